//! The blob tree of the history: content-addressed bytes, stored as their raw length
//! (u64 LE) and a zstd frame, keyed by their SHA-256. A blob value is not framed: it
//! verifies itself against its key when read. Every write and removal is counted in the
//! history's totals ([`super::counts::HistoryTally`]).

use sha2::Digest;

use super::counts::HistoryDelta;
use super::history::HistoryStore;
use super::{StoreError, history::corrupt};

/// zstd level for blobs: fast, and most artifacts are small text.
const ZSTD_LEVEL: i32 = 3;

/// A blob's stored value: raw length (u64 LE) and a zstd frame.
pub(super) fn blob_value(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let frame = zstd::bulk::compress(bytes, ZSTD_LEVEL)
        .map_err(|e| corrupt(format!("compressing a blob: {e}")))?;
    let mut v = Vec::with_capacity(8 + frame.len());
    v.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    v.extend_from_slice(&frame);
    Ok(v)
}

/// The bytes of a stored blob value, checked against its id.
fn blob_bytes(sha: &[u8; 32], v: &[u8]) -> Result<Vec<u8>, StoreError> {
    let bad = |detail: String| StoreError::BadBlob {
        blob: hex::encode(sha),
        detail,
    };
    if v.len() < 8 {
        return Err(bad("shorter than its header".into()));
    }
    let len = u64::from_le_bytes(v[..8].try_into().expect("8 bytes")) as usize;
    let bytes = zstd::bulk::decompress(&v[8..], len).map_err(|e| bad(e.to_string()))?;
    if bytes.len() != len {
        return Err(bad("wrong length".into()));
    }
    let found: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    if &found != sha {
        return Err(bad("its bytes do not hash to its id".into()));
    }
    Ok(bytes)
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
    /// damaged one is replaced); returns whether it was written. The caller computed `sha`
    /// from `bytes`.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_blob(&self, sha: &[u8; 32], bytes: &[u8]) -> Result<bool, StoreError> {
        if let Some(v) = self.store.with(|h| Ok(h.blobs.get(sha)?))? {
            if blob_bytes(sha, &v).is_ok() {
                return Ok(false);
            }
            self.store.forget_bad_blob(sha);
            tracing::warn!(blob = %hex::encode(sha), "replacing a damaged blob with a sound copy");
        }
        let value = blob_value(bytes)?;
        self.store.with(|h| {
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
    /// sled failed, or the stored blob is damaged ([`StoreError::BadBlob`]: only the
    /// versions that need it are affected).
    pub fn blob(&self, sha: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let v = self.store.with(|h| Ok(h.blobs.get(sha)?))?;
        let bytes = v.map(|v| blob_bytes(sha, &v)).transpose();
        if let Err(e) = &bytes {
            tracing::error!(error = %e, "a damaged blob: the versions that need it are unavailable");
            self.store.note_bad_blob(sha);
        }
        bytes
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

    /// Removes a blob; returns the bytes it occupied.
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
}
