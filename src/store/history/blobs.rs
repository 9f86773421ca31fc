//! The blob tree (`history_blobs`): a file's bytes stored once under their SHA-256, whole
//! or as a delta against an earlier blob (the same file's previous content).
//!
//! | value | layout |
//! |---|---|
//! | whole | raw length (u64 LE) + zstd frame (level 19 up to 128 KiB, 3 above) |
//! | delta | a record frame ([`frame`], tree `Blobs`, key = the blob's SHA-256) holding [`Delta`]: base SHA-256 (32) + chain depth (u8) + raw length (u64 LE) + a zstd frame compressed with the base's bytes as its prefix |
//!
//! Whatever the layout, the bytes read back are checked against their key, so a blob
//! verifies itself. A delta is kept only when it is smaller than the whole blob, and a chain
//! is at most [`MAX_DEPTH`] deltas long: reading any blob costs at most that many extra
//! (small) decompressions. The frame lets a salvage ([`super::super::salvage`]) find deltas
//! in raw files; it resolves them once their bases are found. Retention keeps the bases of
//! the blobs it keeps ([`HistoryStore::blob_base`]).

use std::collections::BTreeMap;

use sha2::Digest;
use zstd::zstd_safe::{CCtx, CParameter, DCtx};

use super::super::frame::{self, TreeId};
use super::super::{Handles, StoreError};
use super::{BlobTotals, HistoryStore, codec, corrupt};

/// zstd level for blobs up to [`SMALL`] bytes: most artifacts are small text, which level
/// 19 packs tighter in well under a millisecond each.
const ZSTD_LEVEL_SMALL: i32 = 19;
/// zstd level for larger blobs: fast.
const ZSTD_LEVEL: i32 = 3;
const SMALL: usize = 128 << 10;

fn level(len: usize) -> i32 {
    if len <= SMALL {
        ZSTD_LEVEL_SMALL
    } else {
        ZSTD_LEVEL
    }
}
/// Longest chain of deltas; the next version of the file is stored whole.
pub const MAX_DEPTH: u8 = 32;
/// Files larger than this are always stored whole (a delta's base is held in memory).
const MAX_DELTA_SOURCE: usize = 16 << 20;
/// Bytes of a delta before its zstd frame.
const DELTA_HEADER: usize = 32 + 1 + 8;

/// A delta blob's value (inside its frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta<'a> {
    /// The blob whose bytes are the prefix.
    pub base: [u8; 32],
    /// 1 for a delta against a whole blob, one more per delta below.
    pub depth: u8,
    /// Bytes of the blob.
    pub len: u64,
    /// zstd frame compressed with the base's bytes as prefix.
    pub zstd: &'a [u8],
}

impl<'a> Delta<'a> {
    /// Reads a delta's value.
    pub fn parse(value: &'a [u8]) -> Option<Delta<'a>> {
        if value.len() < DELTA_HEADER {
            return None;
        }
        Some(Delta {
            base: value[..32].try_into().ok()?,
            depth: value[32],
            len: u64::from_le_bytes(value[33..41].try_into().ok()?),
            zstd: &value[DELTA_HEADER..],
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(DELTA_HEADER + self.zstd.len());
        v.extend_from_slice(&self.base);
        v.push(self.depth);
        v.extend_from_slice(&self.len.to_le_bytes());
        v.extend_from_slice(self.zstd);
        v
    }

    /// The blob's bytes, given its base's; `None` when they do not decompress to exactly
    /// [`Delta::len`] bytes (the caller checks the hash).
    pub fn apply(&self, base: &[u8]) -> Option<Vec<u8>> {
        // Only files up to MAX_DELTA_SOURCE are stored as deltas.
        let len = usize::try_from(self.len)
            .ok()
            .filter(|&n| n <= MAX_DELTA_SOURCE)?;
        // The frame says its size: nothing is allocated for a length it does not confirm.
        if zstd::zstd_safe::get_frame_content_size(self.zstd).ok()? != Some(self.len) {
            return None;
        }
        let mut dctx = DCtx::create();
        dctx.ref_prefix(base).ok()?;
        let mut out = Vec::with_capacity(len);
        let n = dctx.decompress(&mut out, self.zstd).ok()?;
        (n == len && out.len() == len).then_some(out)
    }
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
pub(in crate::store) fn blob_value(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let frame = zstd::bulk::compress(bytes, level(bytes.len()))
        .map_err(|e| corrupt(format!("compressing a blob: {e}")))?;
    let mut v = Vec::with_capacity(8 + frame.len());
    v.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    v.extend_from_slice(&frame);
    Ok(v)
}

/// `bytes` compressed with `base` as prefix.
fn compress_against(bytes: &[u8], base: &[u8]) -> Option<Vec<u8>> {
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(level(bytes.len())))
        .ok()?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true)).ok()?;
    cctx.ref_prefix(base).ok()?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(bytes.len()));
    cctx.compress2(&mut out, bytes).ok()?;
    Some(out)
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

/// The bytes of a whole blob's value, checked against its id.
pub(in crate::store) fn whole_bytes(sha: &[u8; 32], v: &[u8]) -> Result<Vec<u8>, StoreError> {
    if v.len() < 8 {
        return Err(bad_blob(sha, "shorter than its header"));
    }
    let len = u64::from_le_bytes(v[..8].try_into().expect("8 bytes")) as usize;
    let bytes = zstd::bulk::decompress(&v[8..], len).map_err(|e| bad_blob(sha, e.to_string()))?;
    if bytes.len() != len {
        return Err(bad_blob(sha, "wrong length"));
    }
    verified(sha, bytes)
}

/// Reads blob `sha` from `h`, following its chain of deltas (at most `hops` more).
fn read(h: &Handles, sha: &[u8; 32], hops: u8) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(v) = h.blobs.get(sha)? else {
        return Ok(None);
    };
    match stored(sha, &v) {
        Stored::Whole(v) => whole_bytes(sha, v).map(Some),
        Stored::Bad(detail) => Err(bad_blob(sha, detail)),
        Stored::Delta(d) => {
            let Some(hops) = hops.checked_sub(1) else {
                return Err(bad_blob(sha, "a chain of deltas longer than allowed"));
            };
            let base = match read(h, &d.base, hops) {
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
            let bytes = d
                .apply(&base)
                .ok_or_else(|| bad_blob(sha, "its delta does not apply"))?;
            verified(sha, bytes).map(Some)
        }
    }
}

/// Reads blob `sha` from `h` (for the salvage, which checks what it copied).
///
/// # Errors
/// sled failed, or the blob (or a base it needs) is damaged.
pub(in crate::store) fn read_blob(
    h: &Handles,
    sha: &[u8; 32],
) -> Result<Option<Vec<u8>>, StoreError> {
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
/// many blobs were rewritten. Each blob is replaced by one write, after its base.
///
/// # Errors
/// sled failed.
pub(in crate::store) fn repack_blobs(h: &Handles) -> Result<u64, StoreError> {
    let mut versions = BTreeMap::new();
    for kv in h.history.scan_prefix([b'v']) {
        let (_, v) = kv?;
        if let Ok(frame::Frame {
            value: Some(value), ..
        }) = frame::decode(&v)
            && let Ok(version) = codec::decode_version(value)
        {
            versions.insert(version.id, version);
        }
    }
    let mut packed = 0;
    for v in versions.values() {
        let Some(parent) = v.parent.and_then(|p| versions.get(&p)) else {
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
            let whole = blob_value(bytes)?;
            let delta = base
                .filter(|b| *b != sha && bytes.len() <= MAX_DELTA_SOURCE)
                .and_then(|b| delta_of(h, sha, b, bytes))
                .map(|d| self.store.frame(TreeId::Blobs, sha, &d))
                .filter(|d| d.len() < whole.len());
            h.blobs.insert(sha, delta.unwrap_or(whole))?;
            Ok(true)
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
            h.blobs.insert(sha, v)?;
            Ok(())
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
        self.store
            .with(|h| Ok(h.blobs.remove(sha)?.map_or(0, |v| v.len() as u64)))
    }

    /// Counts and sizes of the stored blobs.
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

    #[test]
    fn a_delta_applies_to_its_base_only() {
        let base = b"the skill checks drift when the project deploys\n".repeat(40);
        let mut next = base.clone();
        next[100..110].copy_from_slice(b"CHANGED!!!");
        let z = compress_against(&next, &base).unwrap();
        assert!(z.len() < 64, "{} bytes", z.len());
        let d = Delta {
            base: [7; 32],
            depth: 1,
            len: next.len() as u64,
            zstd: &z,
        };
        let encoded = d.encode();
        let parsed = Delta::parse(&encoded).unwrap();
        assert_eq!(parsed, d);
        assert_eq!(parsed.apply(&base).unwrap(), next);
        let lying = Delta { len: 5, ..d };
        assert_eq!(lying.apply(&base), None);
        assert_eq!(Delta::parse(&encoded[..DELTA_HEADER - 1]), None);
    }
}
