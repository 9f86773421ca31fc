//! The blob tree (`history_blobs`): a file's bytes stored once under their SHA-256, whole
//! or as a delta against an earlier blob (the same file's previous content).
//!
//! | value | layout |
//! |---|---|
//! | whole | raw length (u64 LE) + zstd frame (level 19 up to 128 KiB, 3 above) |
//! | delta | a record frame ([`frame`], tree `Blobs`, key = the blob's SHA-256) holding a [`Delta`]: base SHA-256 (32) + chain depth (u8) + raw length (u64 LE) + a zstd frame compressed with the base's bytes as its prefix |
//!
//! Whatever the layout, the bytes read back are checked against their key, so a blob
//! verifies itself. A delta is kept only when it is smaller than the whole blob, and a chain
//! is at most [`MAX_DEPTH`] deltas long. The frame lets a salvage ([`super::salvage`]) find
//! deltas in raw files; it resolves them once their bases are found. Retention keeps the
//! bases of the blobs it keeps ([`HistoryStore::blob_base`]). Every write and removal is
//! counted in the history's totals ([`super::counts::HistoryTally`]).

mod delta;

use std::collections::BTreeMap;

use sha2::Digest;

pub use delta::{Delta, MAX_DEPTH};
use delta::{MAX_DELTA_SOURCE, compress_against, level};

use super::counts::HistoryDelta;
use super::frame::{self, TreeId};
use super::history::{HistoryStore, codec, corrupt, version_record};
use super::{Handles, StoreError};

/// Counts and sizes of the stored blobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobTotals {
    pub blobs: u64,
    /// Bytes stored (compressed frames plus their headers).
    pub compressed_bytes: u64,
    /// Bytes the blobs hold once decompressed.
    pub raw_bytes: u64,
    /// Blobs stored as deltas against another.
    pub deltas: u64,
}

/// A stored blob value, told apart by its first bytes (a delta is a record frame).
#[derive(Debug)]
enum Stored<'a> {
    Whole(&'a [u8]),
    Delta(Delta<'a>),
    /// A frame that is not a delta's, or whose delta does not parse.
    Bad(String),
}

fn stored<'a>(sha: &[u8; 32], v: &'a [u8]) -> Stored<'a> {
    if !v.starts_with(&frame::MAGIC) {
        return Stored::Whole(v);
    }
    match frame::decode(v) {
        Ok(f) if f.tree == TreeId::Blobs && f.key == sha => match f.value.and_then(Delta::parse) {
            Some(d) => Stored::Delta(d),
            None => Stored::Bad("a delta that does not parse".into()),
        },
        Ok(_) => Stored::Bad("a record framed for another key".into()),
        // A whole blob whose length header happens to start like a frame.
        Err(_) => Stored::Whole(v),
    }
}

/// A whole blob's stored value: raw length (u64 LE) and a zstd frame.
pub(super) fn blob_value(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let frame = zstd::bulk::compress(bytes, level(bytes.len()))
        .map_err(|e| corrupt(format!("compressing a blob: {e}")))?;
    let mut v = Vec::with_capacity(8 + frame.len());
    v.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    v.extend_from_slice(&frame);
    Ok(v)
}

fn bad_blob(sha: &[u8; 32], detail: impl Into<String>) -> StoreError {
    StoreError::BadBlob {
        blob: hex::encode(sha),
        detail: detail.into(),
    }
}

/// Checks that `bytes` hash to `sha`.
fn verified(sha: &[u8; 32], bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    let found: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    if &found != sha {
        return Err(bad_blob(sha, "its bytes do not hash to its id"));
    }
    Ok(bytes)
}

/// The bytes of a whole blob's value (not yet checked against its id).
fn whole_unverified(sha: &[u8; 32], v: &[u8]) -> Result<Vec<u8>, StoreError> {
    if v.len() < 8 {
        return Err(bad_blob(sha, "shorter than its header"));
    }
    let len = u64::from_le_bytes(v[..8].try_into().expect("8 bytes")) as usize;
    let bytes = zstd::bulk::decompress(&v[8..], len).map_err(|e| bad_blob(sha, e.to_string()))?;
    if bytes.len() != len {
        return Err(bad_blob(sha, "wrong length"));
    }
    Ok(bytes)
}

/// Reads blob `sha` from `h`, following its chain of deltas (at most `hops` more), and
/// checks the bytes against `sha`.
fn read(h: &Handles, sha: &[u8; 32], hops: u8) -> Result<Option<Vec<u8>>, StoreError> {
    match unverified(h, sha, hops)? {
        Some(bytes) => verified(sha, bytes).map(Some),
        None => Ok(None),
    }
}

/// As [`read`], without hashing the result: the bases of a chain are checked by the hash of
/// the blob read through them (wrong base bytes cannot give the right hash), so a chain
/// costs one hash, not one per delta.
fn unverified(h: &Handles, sha: &[u8; 32], hops: u8) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(v) = h.blobs.get(sha)? else {
        return Ok(None);
    };
    match stored(sha, &v) {
        Stored::Whole(v) => whole_unverified(sha, v).map(Some),
        Stored::Bad(detail) => Err(bad_blob(sha, detail)),
        Stored::Delta(d) => {
            let Some(hops) = hops.checked_sub(1) else {
                return Err(bad_blob(sha, "a chain of deltas longer than allowed"));
            };
            let base = match unverified(h, &d.base, hops) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    return Err(bad_blob(
                        sha,
                        format!("its base blob {} is missing", hex::encode(d.base)),
                    ));
                }
                Err(StoreError::BadBlob { blob, .. }) => {
                    return Err(bad_blob(sha, format!("its base blob {blob} is damaged")));
                }
                Err(e) => return Err(e),
            };
            d.apply(&base)
                .map(Some)
                .ok_or_else(|| bad_blob(sha, "its delta does not apply"))
        }
    }
}

/// Reads blob `sha` from `h` (for the salvage, which checks what it copied).
///
/// # Errors
/// sled failed, or the blob (or a base it needs) is damaged.
pub(super) fn read_blob(h: &Handles, sha: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
    read(h, sha, MAX_DEPTH)
}

/// The value of a delta (unframed) of `bytes`, blob `sha`, against blob `base`, unless the
/// chain would grow too long, would lead back to `sha`, or the base cannot be read.
fn delta_of(h: &Handles, sha: &[u8; 32], base: &[u8; 32], bytes: &[u8]) -> Option<Vec<u8>> {
    // The base's depth, and a walk down its chain: a file that returns to an earlier
    // content must not become a delta of its own delta.
    let mut depth = None;
    let mut at = *base;
    for hop in 0.. {
        if &at == sha || hop > MAX_DEPTH {
            return None;
        }
        let v = h.blobs.get(at).ok()??;
        let next = match stored(&at, &v) {
            Stored::Whole(_) => None,
            Stored::Delta(d) => Some(d),
            Stored::Bad(_) => return None,
        };
        let d = depth.get_or_insert(next.map_or(0, |d| d.depth));
        if *d >= MAX_DEPTH {
            return None;
        }
        match next {
            Some(n) => at = n.base,
            None => break,
        }
    }
    let base_bytes = read(h, base, MAX_DEPTH).ok()??;
    let zstd = compress_against(bytes, &base_bytes)?;
    Some(
        Delta {
            base: *base,
            depth: depth? + 1,
            len: bytes.len() as u64,
            zstd: &zstd,
        }
        .encode(),
    )
}

/// Stores each file's later contents as deltas against its earlier ones where that is
/// smaller (a store written before deltas existed, converted when opened); returns how
/// many blobs were rewritten. Each blob is replaced by one write, after its base. The
/// history's totals are not known yet while a store opens: nothing to count.
///
/// # Errors
/// sled failed.
pub(super) fn repack_blobs(h: &Handles) -> Result<u64, StoreError> {
    let mut versions = BTreeMap::new();
    for kv in h.history.scan_prefix([b'v']) {
        let (k, v) = kv?;
        if let Ok(version) = version_record(h, &k, &v) {
            versions.insert(version.id, version);
        }
    }
    let mut packed = 0;
    for v in versions.values() {
        let Some(parent) = v.parents.first().and_then(|p| versions.get(p)) else {
            continue;
        };
        for e in &v.entries {
            let base = parent
                .entries
                .iter()
                .find(|b| b.path == e.path && b.blob != e.blob)
                .and_then(|b| codec::raw_hash(&b.blob));
            let (Some(sha), Some(base)) = (codec::raw_hash(&e.blob), base) else {
                continue;
            };
            let Some(value) = h.blobs.get(sha)? else {
                continue;
            };
            if !matches!(stored(&sha, &value), Stored::Whole(_)) {
                continue;
            }
            let Ok(Some(bytes)) = read(h, &sha, 0) else {
                continue;
            };
            if bytes.len() > MAX_DELTA_SOURCE {
                continue;
            }
            if let Some(d) = delta_of(h, &sha, &base, &bytes) {
                let framed = frame::encode(TreeId::Blobs, 0, &sha, Some(&d));
                if framed.len() < value.len() {
                    h.blobs.insert(sha, framed)?;
                    packed += 1;
                }
            }
        }
    }
    Ok(packed)
}

/// The change to the totals of writing `new` where `old` stood.
fn written(old: Option<&sled::IVec>, new: usize) -> HistoryDelta {
    let mut d = HistoryDelta::default();
    d.blob_written(old.map(|v| v.len() as u64), new as u64);
    d
}

impl HistoryStore {
    /// Whether a blob is stored.
    ///
    /// # Errors
    /// sled failed.
    pub fn has_blob(&self, sha: &[u8; 32]) -> Result<bool, StoreError> {
        self.store.with(|h| Ok(h.blobs.contains_key(sha)?))
    }

    /// Stores `bytes` under their SHA-256 `sha` unless a sound copy is already there (a
    /// damaged one is replaced); returns whether it was written. With a `base` (the same
    /// file's previous content, stored), it is kept as a delta against it when that is
    /// smaller. The caller computed `sha` from `bytes`.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_blob(
        &self,
        sha: &[u8; 32],
        bytes: &[u8],
        base: Option<&[u8; 32]>,
    ) -> Result<bool, StoreError> {
        self.store.with(|h| {
            if h.blobs.contains_key(sha)? {
                match read(h, sha, MAX_DEPTH) {
                    Ok(Some(_)) => return Ok(false),
                    Err(e @ StoreError::Sled(_)) => return Err(e),
                    _ => {}
                }
                self.store.forget_bad_blob(sha);
                tracing::warn!(blob = %hex::encode(sha), "replacing a damaged blob with a sound copy");
            }
            let delta = base
                .filter(|b| *b != sha && bytes.len() <= MAX_DELTA_SOURCE)
                .and_then(|b| delta_of(h, sha, b, bytes))
                .map(|d| self.store.frame(TreeId::Blobs, sha, &d));
            // A delta under a quarter of the raw bytes is kept without compressing them
            // whole as well (text alone rarely compresses that far; that second
            // compression was half of a capture's time).
            let value = match delta {
                Some(d) if d.len() * 4 < bytes.len() => d,
                Some(d) => {
                    let whole = blob_value(bytes)?;
                    if d.len() < whole.len() { d } else { whole }
                }
                None => blob_value(bytes)?,
            };
            h.counts.history.write(|| -> Result<_, StoreError> {
                let new = value.len();
                let old = h.blobs.insert(sha, value)?;
                Ok((true, written(old.as_ref(), new)))
            })
        })
    }

    /// The bytes of a blob, if stored.
    ///
    /// # Errors
    /// sled failed, or the stored blob (or a base it needs) is damaged
    /// ([`StoreError::BadBlob`]: only the versions that need it are affected).
    pub fn blob(&self, sha: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let bytes = self.store.with(|h| match read(h, sha, MAX_DEPTH) {
            Err(e @ StoreError::BadBlob { .. }) => Ok(Err(e)),
            other => other.map(Ok),
        })?;
        if let Err(e) = &bytes {
            tracing::error!(error = %e, "a damaged blob: the versions that need it are unavailable");
            self.store.note_bad_blob(sha);
        }
        bytes
    }

    /// The blob a delta blob needs (`None` for a whole or missing blob).
    ///
    /// # Errors
    /// sled failed.
    pub fn blob_base(&self, sha: &[u8; 32]) -> Result<Option<[u8; 32]>, StoreError> {
        self.store.with(|h| {
            Ok(h.blobs.get(sha)?.and_then(|v| match stored(sha, &v) {
                Stored::Delta(d) => Some(d.base),
                _ => None,
            }))
        })
    }

    /// Replaces a blob's stored value with damaged bytes (tests of what a damaged blob
    /// does; test builds only).
    ///
    /// # Errors
    /// sled failed.
    #[cfg(feature = "fault-injection")]
    pub fn damage_blob(&self, sha: &[u8; 32]) -> Result<(), StoreError> {
        self.store.with(|h| {
            let mut v = h.blobs.get(sha)?.map(|v| v.to_vec()).unwrap_or_default();
            let n = v.len();
            for b in v.iter_mut().skip(8).take(n.saturating_sub(12)) {
                *b ^= 0x5A;
            }
            h.counts.history.write(|| -> Result<_, StoreError> {
                let new = v.len();
                let old = h.blobs.insert(sha, v)?;
                Ok(((), written(old.as_ref(), new)))
            })
        })
    }

    /// Every stored blob's id.
    ///
    /// # Errors
    /// sled failed.
    pub fn blob_ids(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.store.with(|h| {
            h.blobs
                .iter()
                .keys()
                .map(|k| {
                    let k = k?;
                    k.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("blob key is not 32 bytes"))
                })
                .collect()
        })
    }

    /// Removes a blob; returns the bytes it occupied. The caller keeps the bases of the
    /// blobs it keeps.
    ///
    /// # Errors
    /// sled failed.
    pub fn remove_blob(&self, sha: &[u8; 32]) -> Result<u64, StoreError> {
        self.store.with(|h| {
            h.counts.history.write(|| -> Result<_, StoreError> {
                let old = h.blobs.remove(sha)?.map(|v| v.len() as u64);
                let mut d = HistoryDelta::default();
                d.blob_removed(old);
                Ok((old.unwrap_or(0), d))
            })
        })
    }

    /// Counts and sizes of the stored blobs (one scan of the blob tree).
    ///
    /// # Errors
    /// sled failed.
    pub fn blob_totals(&self) -> Result<BlobTotals, StoreError> {
        self.store.with(|h| {
            let mut t = BlobTotals::default();
            for kv in h.blobs.iter() {
                let (k, v) = kv?;
                t.blobs += 1;
                t.compressed_bytes += v.len() as u64;
                let sha: [u8; 32] = k.as_ref().try_into().unwrap_or([0; 32]);
                t.raw_bytes += match stored(&sha, &v) {
                    Stored::Delta(d) => {
                        t.deltas += 1;
                        d.len
                    }
                    Stored::Whole(v) if v.len() >= 8 => {
                        u64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
                    }
                    _ => 0,
                };
            }
            Ok(t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// 3,000 letters that compress poorly, with byte 200 set to `n`.
    fn text(n: u8) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut t: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'a' + (x % 26) as u8
            })
            .collect();
        t[200] = n;
        t
    }

    #[test]
    fn a_chain_reads_back_and_a_damaged_base_spoils_only_its_chain() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let hs = store.history().unwrap();
        let shas: Vec<[u8; 32]> = (0..4u8)
            .map(|n| sha2::Sha256::digest(text(n)).into())
            .collect();
        for n in 0..4usize {
            let base = n.checked_sub(1).map(|b| &shas[b]);
            assert!(hs.put_blob(&shas[n], &text(n as u8), base).unwrap());
        }
        assert_eq!(hs.blob_totals().unwrap().deltas, 3);
        assert_eq!(hs.blob_base(&shas[3]).unwrap(), Some(shas[2]));
        for (n, sha) in shas.iter().enumerate() {
            assert_eq!(hs.blob(sha).unwrap().unwrap(), text(n as u8));
        }
        // The middle of the chain loses a byte: what is read through it is refused.
        store
            .with(|h| {
                let mut v = h.blobs.get(shas[1])?.unwrap().to_vec();
                let at = v.len() - 2;
                v[at] ^= 0x40;
                h.blobs.insert(shas[1], v)?;
                Ok(())
            })
            .unwrap();
        assert_eq!(hs.blob(&shas[0]).unwrap().unwrap(), text(0));
        for (n, sha) in shas.iter().enumerate().skip(1) {
            assert!(
                matches!(hs.blob(sha), Err(StoreError::BadBlob { .. })),
                "blob {n}"
            );
        }
        // A sound copy of the damaged one is written again; the chain reads again.
        assert!(hs.put_blob(&shas[1], &text(1), None).unwrap());
        assert_eq!(hs.blob(&shas[3]).unwrap().unwrap(), text(3));
    }
}
