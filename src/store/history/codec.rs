//! Compact binary encodings of version and snapshot records, and the reading of the JSON
//! records earlier stores wrote.
//!
//! A binary record starts with [`FORMAT`]; a JSON one with `{`. Numbers are LEB128 varints
//! (times zigzag), strings and byte strings are a varint length and the bytes, a SHA-256
//! written in hex (a blob id, a content hash) is its 32 raw bytes, and a snapshot's
//! members are the differences between successive ids. A record must be read to its last
//! byte. Pure functions over bytes, used by the history trees and by the salvage reader.
//!
//! A version record is whole ([`FORMAT`]) or *relative* ([`FORMAT_RELATIVE`]): its files
//! are then written as runs copied from another version's files (its first parent's, whose
//! id and chain depth it names) and the files that differ, so a version that changed one
//! file of ten takes a tenth of the bytes. Reading it needs that version's files
//! ([`decode_version_with`]); a chain is at most [`MAX_RECORD_DEPTH`] records long.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::model::{
    Entry, Location, Origin, Scope, Snapshot, SnapshotId, SnapshotTarget, Version, VersionId,
};

/// The first byte of a binary record.
pub const FORMAT: u8 = 1;
/// The first byte of a relative version record.
pub const FORMAT_RELATIVE: u8 = 2;
/// Longest chain of relative version records; the next one is written whole.
pub const MAX_RECORD_DEPTH: u8 = 8;

/// The version a record's files are written against, with its own record's depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBase<'a> {
    pub id: VersionId,
    pub entries: &'a [Entry],
    /// 0 for a whole record.
    pub depth: u8,
}

/// Why a record does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

/// Encodes a version record (whole).
pub fn encode_version(v: &Version) -> Vec<u8> {
    encode_version_against(v, None)
}

/// Encodes a version record, relative to `base` when one is given, not too deep and the
/// result smaller.
pub fn encode_version_against(v: &Version, base: Option<RecordBase<'_>>) -> Vec<u8> {
    let whole = encode(v, None);
    match base.filter(|b| b.depth < MAX_RECORD_DEPTH && b.id != v.id) {
        Some(b) => {
            let relative = encode(v, Some(b));
            if relative.len() < whole.len() {
                relative
            } else {
                whole
            }
        }
        None => whole,
    }
}

/// The version a relative record is written against and the record's depth (`None` for a
/// whole record, or bytes that are not a version record).
pub fn record_base(bytes: &[u8]) -> Option<(VersionId, u8)> {
    let mut r = match bytes.split_first() {
        Some((&FORMAT_RELATIVE, rest)) => Reader { rest },
        _ => return None,
    };
    skip_header(&mut r).ok()?;
    let id = VersionId(r.num().ok()?);
    Some((id, r.byte().ok()?))
}

fn encode(v: &Version, base: Option<RecordBase<'_>>) -> Vec<u8> {
    let mut w = Writer(vec![if base.is_some() {
        FORMAT_RELATIVE
    } else {
        FORMAT
    }]);
    w.num(v.id.0);
    match &v.location.scope {
        Scope::Collection(name) => {
            w.0.push(0);
            w.bytes(name.as_bytes());
        }
        Scope::Project(path) => {
            w.0.push(1);
            w.bytes(path.as_os_str().as_bytes());
        }
    }
    w.bytes(v.location.root.as_bytes());
    w.bytes(v.location.path.as_bytes());
    w.hash(&v.content_hash);
    w.0.push(u8::from(v.single_file));
    match base {
        None => {
            w.num(v.entries.len() as u64);
            for e in &v.entries {
                w.entry(e);
            }
        }
        Some(b) => {
            w.num(b.id.0);
            w.0.push(b.depth + 1);
            w.runs(&v.entries, b.entries);
        }
    }
    w.num(v.parents.len() as u64);
    for p in &v.parents {
        w.num(p.0);
    }
    w.time(v.time_ms);
    w.0.push(origin_byte(v.origin));
    w.opt(v.message.as_deref());
    w.num(v.tags.len() as u64);
    for t in &v.tags {
        w.bytes(t.as_bytes());
    }
    w.0
}

/// Decodes a whole version record (binary, or JSON as earlier stores wrote it).
///
/// # Errors
/// The bytes are not a whole version record.
pub fn decode_version(bytes: &[u8]) -> Result<Version, DecodeError> {
    decode_version_with(bytes, |_| None)
}

/// Decodes a version record, asking `files_of` for the files of the version a relative
/// record is written against.
///
/// # Errors
/// The bytes are not a version record, or `files_of` has not the files it needs.
pub fn decode_version_with(
    bytes: &[u8],
    mut files_of: impl FnMut(VersionId) -> Option<Vec<Entry>>,
) -> Result<Version, DecodeError> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()));
    }
    let relative = bytes.first() == Some(&FORMAT_RELATIVE);
    let mut r = match bytes.split_first() {
        Some((&FORMAT_RELATIVE, rest)) => Reader { rest },
        _ => reader(bytes)?,
    };
    let id = VersionId(r.num()?);
    let scope = match r.byte()? {
        0 => Scope::Collection(r.string()?),
        1 => Scope::Project(PathBuf::from(OsStr::from_bytes(r.bytes()?))),
        _ => return Err(r.bad("an unknown scope")),
    };
    let location = Location {
        scope,
        root: r.string()?,
        path: r.string()?,
    };
    let content_hash = r.hash()?;
    let single_file = r.flag()?;
    let entries = if relative {
        let base = VersionId(r.num()?);
        let depth = r.byte()?;
        if depth == 0 || depth > MAX_RECORD_DEPTH {
            return Err(r.bad("a relative record too deep"));
        }
        let files = files_of(base)
            .ok_or_else(|| DecodeError(format!("the files of {base} it is written against")))?;
        r.runs(&files)?
    } else {
        let count = r.count()?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            entries.push(r.entry()?);
        }
        entries
    };
    let count = r.count()?;
    let mut parents = Vec::with_capacity(count);
    for _ in 0..count {
        parents.push(VersionId(r.num()?));
    }
    let time_ms = r.time()?;
    let origin = origin_of(r.byte()?).ok_or_else(|| r.bad("an unknown origin"))?;
    let message = r.opt()?;
    let count = r.count()?;
    let mut tags = Vec::with_capacity(count);
    for _ in 0..count {
        tags.push(r.string()?);
    }
    r.end()?;
    Ok(Version {
        id,
        location,
        content_hash,
        single_file,
        entries,
        parents,
        time_ms,
        origin,
        message,
        tags,
    })
}

/// Reads a version record's fields before its files.
fn skip_header(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    r.num()?;
    r.byte()?;
    r.bytes()?;
    r.bytes()?;
    r.bytes()?;
    r.hash()?;
    r.flag()?;
    Ok(())
}

/// Encodes a snapshot record.
pub fn encode_snapshot(s: &Snapshot) -> Vec<u8> {
    let mut w = Writer(vec![FORMAT]);
    w.num(s.id.0);
    match &s.target {
        SnapshotTarget::Collection(name) => {
            w.0.push(0);
            w.bytes(name.as_bytes());
        }
        SnapshotTarget::Project(path) => {
            w.0.push(1);
            w.bytes(path.as_os_str().as_bytes());
        }
    }
    w.time(s.time_ms);
    w.0.push(origin_byte(s.origin));
    w.opt(s.message.as_deref());
    w.num(s.members.len() as u64);
    let mut previous = 0u64;
    for m in &s.members {
        w.time(m.0.wrapping_sub(previous) as i64);
        previous = m.0;
    }
    w.0
}

/// Decodes a snapshot record (binary, or JSON as earlier stores wrote it).
///
/// # Errors
/// The bytes are not a snapshot record.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()));
    }
    let mut r = reader(bytes)?;
    let id = SnapshotId(r.num()?);
    let target = match r.byte()? {
        0 => SnapshotTarget::Collection(r.string()?),
        1 => SnapshotTarget::Project(PathBuf::from(OsStr::from_bytes(r.bytes()?))),
        _ => return Err(r.bad("an unknown target")),
    };
    let time_ms = r.time()?;
    let origin = origin_of(r.byte()?).ok_or_else(|| r.bad("an unknown origin"))?;
    let message = r.opt()?;
    let count = r.count()?;
    let mut members = Vec::with_capacity(count);
    let mut previous = 0u64;
    for _ in 0..count {
        previous = previous.wrapping_add(r.time()? as u64);
        members.push(VersionId(previous));
    }
    r.end()?;
    Ok(Snapshot {
        id,
        target,
        time_ms,
        origin,
        message,
        members,
    })
}

fn origin_byte(o: Origin) -> u8 {
    match o {
        Origin::Watch => 0,
        Origin::Deploy => 1,
        Origin::Sync => 2,
        Origin::Merge => 3,
        Origin::Rollback => 4,
        Origin::Import => 5,
        Origin::Manual => 6,
    }
}

fn origin_of(b: u8) -> Option<Origin> {
    Some(match b {
        0 => Origin::Watch,
        1 => Origin::Deploy,
        2 => Origin::Sync,
        3 => Origin::Merge,
        4 => Origin::Rollback,
        5 => Origin::Import,
        6 => Origin::Manual,
        _ => return None,
    })
}

/// The 32 bytes of a lowercase hex SHA-256 that prints back the same.
pub(in crate::store) fn raw_hash(hex_id: &str) -> Option<[u8; 32]> {
    let raw: [u8; 32] = hex::decode(hex_id).ok()?.try_into().ok()?;
    (hex::encode(raw) == hex_id).then_some(raw)
}

struct Writer(Vec<u8>);

impl Writer {
    fn num(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn time(&mut self, t: i64) {
        self.num(((t << 1) ^ (t >> 63)) as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.num(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.bytes(s.as_bytes());
            }
        }
    }

    fn entry(&mut self, e: &Entry) {
        self.bytes(e.path.as_bytes());
        self.hash(&e.blob);
        self.num(e.size);
        self.num(u64::from(e.mode));
        self.opt(e.symlink.as_deref());
    }

    /// `entries` as runs of `base`'s (tag 0, start, length) and files of their own (tag 1),
    /// after their count.
    fn runs(&mut self, entries: &[Entry], base: &[Entry]) {
        let mut items: Vec<Result<(usize, usize), &Entry>> = Vec::new();
        for e in entries {
            let at = base.iter().position(|b| b == e);
            match (items.last_mut(), at) {
                (Some(Ok((start, len))), Some(at)) if *start + *len == at => *len += 1,
                (_, Some(at)) => items.push(Ok((at, 1))),
                (_, None) => items.push(Err(e)),
            }
        }
        self.num(items.len() as u64);
        for item in items {
            match item {
                Ok((start, len)) => {
                    self.0.push(0);
                    self.num(start as u64);
                    self.num(len as u64);
                }
                Err(e) => {
                    self.0.push(1);
                    self.entry(e);
                }
            }
        }
    }

    /// A hex SHA-256 as its raw bytes (tag 0), anything else as a string (tag 1).
    fn hash(&mut self, hex_id: &str) {
        match raw_hash(hex_id) {
            Some(raw) => {
                self.0.push(0);
                self.0.extend_from_slice(&raw);
            }
            None => {
                self.0.push(1);
                self.bytes(hex_id.as_bytes());
            }
        }
    }
}

fn reader(bytes: &[u8]) -> Result<Reader<'_>, DecodeError> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => Ok(Reader { rest }),
        _ => Err(DecodeError("not a record of a known format".into())),
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bad(&self, what: &str) -> DecodeError {
        DecodeError(format!("{what} ({} bytes before the end)", self.rest.len()))
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| self.bad("cut short"))?;
        self.rest = rest;
        Ok(b)
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.bad("a flag that is neither 0 nor 1")),
        }
    }

    fn num(&mut self) -> Result<u64, DecodeError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7F)
                .checked_shl(shift)
                .filter(|v| v >> shift == u64::from(b & 0x7F))
                .ok_or_else(|| self.bad("a number too large"))?;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.bad("a number too long"))
    }

    fn time(&mut self) -> Result<i64, DecodeError> {
        let n = self.num()?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    /// A count of items, each at least one byte long.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.num()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.rest.len())
            .ok_or_else(|| self.bad("a count beyond the record"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(self.bad("cut short"));
        }
        let (b, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(b)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.num()?;
        let n = usize::try_from(n).map_err(|_| self.bad("a length too large"))?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.bad("a string that is not UTF-8"))
    }

    fn opt(&mut self) -> Result<Option<String>, DecodeError> {
        self.flag()?.then(|| self.string()).transpose()
    }

    fn hash(&mut self) -> Result<String, DecodeError> {
        match self.byte()? {
            0 => Ok(hex::encode(self.take(32)?)),
            1 => self.string(),
            _ => Err(self.bad("an unknown hash form")),
        }
    }

    fn entry(&mut self) -> Result<Entry, DecodeError> {
        Ok(Entry {
            path: self.string()?,
            blob: self.hash()?,
            size: self.num()?,
            mode: u32::try_from(self.num()?).map_err(|_| self.bad("a mode too large"))?,
            symlink: self.opt()?,
        })
    }

    /// Files written by [`Writer::runs`] against `base`.
    fn runs(&mut self, base: &[Entry]) -> Result<Vec<Entry>, DecodeError> {
        let count = self.count()?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            match self.byte()? {
                0 => {
                    let start = usize::try_from(self.num()?).unwrap_or(usize::MAX);
                    let len = usize::try_from(self.num()?).unwrap_or(usize::MAX);
                    let run = start
                        .checked_add(len)
                        .and_then(|end| base.get(start..end))
                        .ok_or_else(|| self.bad("a run beyond the files it copies"))?;
                    out.extend_from_slice(run);
                }
                1 => out.push(self.entry()?),
                _ => return Err(self.bad("an unknown kind of run")),
            }
        }
        Ok(out)
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.bad("bytes after the record"))
        }
    }
}

#[cfg(test)]
mod tests;
