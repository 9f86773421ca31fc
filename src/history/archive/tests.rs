//! Hostile and malformed archives are refused with their reason; names choose layouts.

use std::fs;
use std::io::{self, Write};

use crate::config::ImportLimits;
use crate::history::HistoryError;

use super::export::header;
use super::reader::read_archive;
use super::*;

fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn refused(bytes: Vec<u8>, limits: &ImportLimits) -> String {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.tar.gz");
    fs::write(&p, gz(&bytes)).unwrap();
    match read_archive(&p, limits) {
        Err(HistoryError::Hostile { problem, .. }) => problem,
        other => panic!("not refused: {other:?}"),
    }
}

fn raw_header(name: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

#[test]
fn arbitrary_bytes_are_checked_without_panics() {
    let limits = ImportLimits::default();
    let good = gz(&tar_with(|b| {
        let data = b"hello\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "default/skills/x/SKILL.md", &data[..])
            .unwrap();
    }));
    assert_eq!(check_bytes(&good, &limits).unwrap(), 1);
    for bad in [
        Vec::new(),
        b"\x1f".to_vec(),
        b"not an archive at all".to_vec(),
        good[..good.len() / 2].to_vec(),
        b"\x28\xb5\x2f\xfd garbage".to_vec(),
        gz(b"not a tar stream, only text"),
    ] {
        assert!(check_bytes(&bad, &limits).is_err(), "{bad:?}");
    }
}

#[test]
fn hostile_entries_are_refused() {
    let limits = ImportLimits::default();
    let abs = tar_with(|b| {
        let h = raw_header(b"/etc/passwd", tar::EntryType::Regular, 1);
        b.append(&h, &b"x"[..]).unwrap();
    });
    assert!(refused(abs, &limits).contains("absolute path or `..`"));
    let dotdot = tar_with(|b| {
        let h = raw_header(b"c/../../x", tar::EntryType::Regular, 1);
        b.append(&h, &b"x"[..]).unwrap();
    });
    assert!(refused(dotdot, &limits).contains("`..`"));
    let link = tar_with(|b| {
        let mut h = header(tar::EntryType::Symlink, 0, 0o777, 0);
        b.append_link(&mut h, "c/evil", "../../etc/passwd").unwrap();
    });
    assert!(refused(link, &limits).contains("points outside"));
    let dev = tar_with(|b| {
        let h = raw_header(b"c/null", tar::EntryType::Char, 0);
        b.append(&h, io::empty()).unwrap();
    });
    assert!(refused(dev, &limits).contains("device file"));
    let small = ImportLimits {
        max_entry_bytes: 1000,
        ..ImportLimits::default()
    };
    let big = tar_with(|b| {
        let mut h = header(tar::EntryType::Regular, 5000, 0o644, 0);
        b.append_data(&mut h, "c/zeros", &vec![0u8; 5000][..])
            .unwrap();
    });
    assert!(refused(big, &small).contains("limit"));
}

#[test]
fn names_choose_layouts() {
    assert_eq!(Layout::of(Path::new("a.tar.zst")).unwrap(), Layout::Zstd);
    assert_eq!(
        Layout::of(Path::new("20251217-103000-123456.tar.gz")).unwrap(),
        Layout::SkillMeat
    );
    assert!(Layout::of(Path::new("a.zip")).is_err());
}
