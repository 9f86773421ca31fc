//! Three texts → the line merge under every resolution must keep its properties
//! (`skillmeatd::merge::selfcheck::check_text`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillmeatd::merge::selfcheck;

fuzz_target!(|input: (Vec<u8>, Vec<u8>, Vec<u8>)| {
    let (base, local, remote) = input;
    if let Err(e) = selfcheck::check_text(&base, &local, &remote) {
        panic!("{e}");
    }
});
