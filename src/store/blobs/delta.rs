//! A delta blob's value: a file's bytes compressed by zstd with an earlier blob's bytes
//! (the same file's previous content) as the prefix it refers back to. Pure functions over
//! bytes, used by [`super`] and by the salvage reader.

use zstd::zstd_safe::{CCtx, CParameter, DCtx};

/// zstd level for blobs up to [`SMALL`] bytes: most artifacts are small text, which level
/// 19 packs tighter in well under a millisecond each.
const ZSTD_LEVEL_SMALL: i32 = 19;
/// zstd level for larger blobs: fast.
const ZSTD_LEVEL: i32 = 3;
const SMALL: usize = 128 << 10;

/// The zstd level for a blob of `len` bytes.
pub(in crate::store) fn level(len: usize) -> i32 {
    if len <= SMALL {
        ZSTD_LEVEL_SMALL
    } else {
        ZSTD_LEVEL
    }
}

/// Longest chain of deltas; the next version of the file is stored whole.
pub const MAX_DEPTH: u8 = 32;
/// Files larger than this are always stored whole (a delta's base is held in memory).
pub(in crate::store) const MAX_DELTA_SOURCE: usize = 16 << 20;
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

    pub(in crate::store) fn encode(&self) -> Vec<u8> {
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

/// `bytes` compressed with `base` as prefix.
pub(in crate::store) fn compress_against(bytes: &[u8], base: &[u8]) -> Option<Vec<u8>> {
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(level(bytes.len())))
        .ok()?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true)).ok()?;
    cctx.ref_prefix(base).ok()?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(bytes.len()));
    cctx.compress2(&mut out, bytes).ok()?;
    Some(out)
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
