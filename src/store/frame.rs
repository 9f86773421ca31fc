//! Record framing: every store value worth salvaging is written as a self-verifying frame,
//! so a scan of the raw bytes of a damaged store can find and check it without sled.
//!
//! ```text
//! magic    4  F0 53 4D 52 ("\xF0SMR")
//! version  1  1
//! tree     1  which tree the record belongs to (see [`TreeId`])
//! flags    1  bit 0: a tombstone (the record was removed; no value)
//! stamp    8  u64 LE, the store's write counter when written: the newest frame of a key wins
//! key_len  4  u32 LE
//! val_len  4  u32 LE
//! crc      4  CRC-32 of everything from `version` to the end of the value, except itself
//! key      key_len bytes
//! value    val_len bytes
//! ```
//!
//! Whole blobs are not framed: a blob is a zstd frame whose bytes hash to its key, which is
//! self-verifying already; a delta blob is framed (so a scan finds it) and verifies by its
//! hash too. Used by every tree module of the store, and by [`super::salvage`].

/// The first bytes of every frame.
pub const MAGIC: [u8; 4] = [0xF0, b'S', b'M', b'R'];
const VERSION: u8 = 1;
/// Bytes before the key.
pub const HEADER: usize = 4 + 1 + 1 + 1 + 8 + 4 + 4 + 4;
/// Largest key a frame may carry (sanity bound for scans).
pub const MAX_KEY: usize = 1 << 16;
/// Largest value a frame may carry (sanity bound for scans).
pub const MAX_VALUE: usize = 1 << 28;

const TOMBSTONE: u8 = 1;

/// The trees whose records are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TreeId {
    Meta = 1,
    Projects = 2,
    History = 3,
    Operations = 4,
    Mutes = 5,
    /// Delta blobs (whole blobs are not framed).
    Blobs = 6,
}

impl TreeId {
    pub fn from_byte(b: u8) -> Option<TreeId> {
        Some(match b {
            1 => TreeId::Meta,
            2 => TreeId::Projects,
            3 => TreeId::History,
            4 => TreeId::Operations,
            5 => TreeId::Mutes,
            6 => TreeId::Blobs,
            _ => return None,
        })
    }

    /// The sled tree's name.
    pub fn name(self) -> &'static str {
        match self {
            TreeId::Meta => "meta",
            TreeId::Projects => "projects",
            TreeId::History => "history",
            TreeId::Operations => "operations",
            TreeId::Mutes => "notify_mutes",
            TreeId::Blobs => "history_blobs",
        }
    }
}

/// A frame, decoded and verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub tree: TreeId,
    pub stamp: u64,
    pub key: &'a [u8],
    /// `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

impl Frame<'_> {
    /// Bytes the frame takes.
    pub fn len(&self) -> usize {
        HEADER + self.key.len() + self.value.map_or(0, <[u8]>::len)
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Encodes a record (or, with `value: None`, a tombstone).
pub fn encode(tree: TreeId, stamp: u64, key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let v = value.unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + key.len() + v.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(tree as u8);
    out.push(if value.is_none() { TOMBSTONE } else { 0 });
    out.extend_from_slice(&stamp.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(key);
    out.extend_from_slice(v);
    let crc = checksum(&out);
    out[HEADER - 4..HEADER].copy_from_slice(&crc.to_le_bytes());
    out
}

fn checksum(frame: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&frame[4..HEADER - 4]);
    h.update(&frame[HEADER..]);
    h.finalize()
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("not a record frame (no magic)")]
    NoMagic,
    #[error("record frame of an unknown version or tree")]
    Unknown,
    #[error("record frame cut short")]
    Short,
    #[error("record frame fails its checksum")]
    Checksum,
}

/// Decodes the frame at the start of `bytes` (trailing bytes are ignored).
///
/// # Errors
/// No magic, an unknown version or tree, lengths beyond the bytes or the bounds, or a
/// checksum that does not match.
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < HEADER || bytes[..4] != MAGIC {
        return Err(if bytes.starts_with(&MAGIC) || bytes.len() < 4 {
            FrameError::Short
        } else {
            FrameError::NoMagic
        });
    }
    let tree = TreeId::from_byte(bytes[5]).ok_or(FrameError::Unknown)?;
    if bytes[4] != VERSION || bytes[6] & !TOMBSTONE != 0 {
        return Err(FrameError::Unknown);
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let stamp = u64::from_le_bytes(bytes[7..15].try_into().expect("8 bytes"));
    let (klen, vlen) = (word(15) as usize, word(19) as usize);
    if klen > MAX_KEY || vlen > MAX_VALUE {
        return Err(FrameError::Unknown);
    }
    let end = HEADER + klen + vlen;
    if bytes.len() < end {
        return Err(FrameError::Short);
    }
    let frame = &bytes[..end];
    if word(23) != checksum(frame) {
        return Err(FrameError::Checksum);
    }
    let tombstone = bytes[6] & TOMBSTONE != 0;
    if tombstone && vlen != 0 {
        return Err(FrameError::Unknown);
    }
    Ok(Frame {
        tree,
        stamp,
        key: &frame[HEADER..HEADER + klen],
        value: (!tombstone).then(|| &frame[HEADER + klen..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let f = encode(
            TreeId::History,
            42,
            b"v\0\0\0\0\0\0\0\x07",
            Some(b"{\"id\":7}"),
        );
        let d = decode(&f).unwrap();
        assert_eq!(d.tree, TreeId::History);
        assert_eq!(d.stamp, 42);
        assert_eq!(d.key, b"v\0\0\0\0\0\0\0\x07");
        assert_eq!(d.value, Some(&b"{\"id\":7}"[..]));
        assert_eq!(d.len(), f.len());
        let mut longer = f.clone();
        longer.extend_from_slice(b"trailing");
        assert_eq!(decode(&longer).unwrap(), d);
        for i in 4..f.len() {
            let mut bad = f.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at {i} went unnoticed");
        }
        assert_eq!(decode(&f[..f.len() - 1]), Err(FrameError::Short));
        assert_eq!(decode(b"{\"id\":7}"), Err(FrameError::NoMagic));
        let t = encode(TreeId::Projects, 1, b"/p", None);
        assert_eq!(decode(&t).unwrap().value, None);
    }
}
