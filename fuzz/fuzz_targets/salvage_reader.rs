//! The salvage reader over arbitrary bytes (a damaged store's files): it never panics, every
//! record it reports verifies and lies inside the input, and the records it decodes (delta
//! blobs, whole and relative version records, snapshot records) are read without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skillmeatd::store::frame::{self, TreeId};
use skillmeatd::store::history::Delta;
use skillmeatd::model::Entry;
use skillmeatd::store::history::codec::{
    decode_snapshot, decode_version, decode_version_with, record_base,
};
use skillmeatd::store::salvage::{Found, blob_at, scan};

fuzz_target!(|data: &[u8]| {
    let mut blobs = Vec::new();
    scan(data, |found| match found {
        Found::Record(f) => {
            let start = f.key.as_ptr() as usize - data.as_ptr() as usize - frame::HEADER;
            let again = frame::decode(&data[start..]).expect("a reported frame decodes");
            assert_eq!(again, f);
            let value = f.value.unwrap_or_default();
            match (f.tree, f.key.first()) {
                (TreeId::Blobs, _) => {
                    if let Some(d) = Delta::parse(value) {
                        // Any bytes may be offered as the base: a wrong one fails, never panics.
                        let base = &data[..data.len().min(256)];
                        if let Some(bytes) = d.apply(base) {
                            assert_eq!(bytes.len() as u64, d.len);
                        }
                    }
                }
                (TreeId::History, Some(b'v')) => {
                    drop(decode_version(value));
                    // A relative record read against any files: a wrong run fails.
                    if record_base(value).is_some() {
                        let files = vec![
                            Entry {
                                path: "SKILL.md".into(),
                                blob: "00".repeat(32),
                                size: 1,
                                mode: 0o644,
                                symlink: None,
                            };
                            3
                        ];
                        drop(decode_version_with(value, |_| Some(files.clone())));
                    }
                }
                (TreeId::History, Some(b's')) => drop(decode_snapshot(value)),
                _ => {}
            }
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
