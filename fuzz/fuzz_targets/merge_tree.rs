//! Three small trees → the artifact merge under every resolution must keep its properties
//! (`skillmeatd::merge::selfcheck::check_tree`).
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use skillmeatd::merge::{Tree, selfcheck};

type Files = Vec<(u8, Vec<u8>)>;

fn tree(files: Files) -> Tree {
    // A handful of names so the sides overlap often.
    files
        .into_iter()
        .map(|(n, c)| (PathBuf::from(format!("f{}", n % 8)), c))
        .collect::<BTreeMap<_, _>>()
}

fuzz_target!(|input: (Files, Files, Files)| {
    let (b, l, r) = input;
    if let Err(e) = selfcheck::check_tree(&tree(b), &tree(l), &tree(r)) {
        panic!("{e}");
    }
});
