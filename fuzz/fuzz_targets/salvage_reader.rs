//! The salvage reader over arbitrary bytes (a damaged store's files): it never panics, and
//! every record it reports verifies and lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillmeatd::store::frame;
use skillmeatd::store::salvage::{Found, blob_at, scan};

fuzz_target!(|data: &[u8]| {
    let mut blobs = Vec::new();
    scan(data, |found| match found {
        Found::Record(f) => {
            let start = f.key.as_ptr() as usize - data.as_ptr() as usize - frame::HEADER;
            let again = frame::decode(&data[start..]).expect("a reported frame decodes");
            assert_eq!(again, f);
        }
        Found::BadRecord { offset } => assert!(offset < data.len()),
        Found::Blob { offset, .. } => blobs.push(offset),
    });
    for offset in blobs.into_iter().take(8) {
        if let Some((_, bytes)) = blob_at(data, offset) {
            assert!(bytes.len() as u64 <= skillmeatd::store::salvage::MAX_BLOB);
        }
    }
});
