//! Arbitrary bytes as an archive to import: every outcome is an accepted entry count or a
//! clean error (hostile, malformed, too big) — never a panic, a hang or an allocation
//! beyond the limits (`skillmeatd::history::archive::check_bytes`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillmeatd::config::ImportLimits as Limits;
use skillmeatd::history::archive::check_bytes;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_entry_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        max_entries: 1000,
    };
    let _ = check_bytes(data, &limits);
});
