//! A content hash as a report carries it ([`ContentHash`]): the 32 bytes of the SHA-256
//! that SkillMeat writes as 64 lowercase hex digits, or, for anything else (a record edited
//! by hand), the text as written.
//!
//! Ten thousand reports hold three each; as strings they were a third of the reports' heap.
//! In JSON (and every human-readable encoding) a hash is its text, as before; in the
//! store's binary records, its bytes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A content hash: SHA-256 bytes when written as SkillMeat writes them, else the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ContentHash {
    /// 64 lowercase hex digits, kept as their 32 bytes.
    Sha256([u8; 32]),
    /// Any other text, as written.
    Text(Box<str>),
}

/// The 32 bytes that `s` spells in 64 lowercase hex digits, if it does.
fn lower_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl ContentHash {
    /// The hash written as `s`.
    pub fn new(s: &str) -> ContentHash {
        match lower_hex(s) {
            Some(bytes) => ContentHash::Sha256(bytes),
            None => ContentHash::Text(s.into()),
        }
    }

    /// Whether `s` writes this hash (exactly: `ABC…` is not `abc…`).
    pub fn is(&self, s: &str) -> bool {
        match self {
            ContentHash::Sha256(bytes) => lower_hex(s).as_ref() == Some(bytes),
            ContentHash::Text(t) => **t == *s,
        }
    }
}

impl From<&str> for ContentHash {
    fn from(s: &str) -> ContentHash {
        ContentHash::new(s)
    }
}

impl From<String> for ContentHash {
    fn from(s: String) -> ContentHash {
        match lower_hex(&s) {
            Some(bytes) => ContentHash::Sha256(bytes),
            None => ContentHash::Text(s.into_boxed_str()),
        }
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentHash::Sha256(bytes) => {
                let mut buf = [0u8; 64];
                // Cannot fail: the buffer is twice the bytes.
                hex::encode_to_slice(bytes, &mut buf).map_err(|_| fmt::Error)?;
                f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
            }
            ContentHash::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

/// The binary encodings' form.
#[derive(Serialize)]
enum WireRef<'a> {
    Sha256(&'a [u8; 32]),
    Text(&'a str),
}

#[derive(Deserialize)]
enum Wire {
    Sha256([u8; 32]),
    Text(Box<str>),
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.collect_str(self);
        }
        match self {
            ContentHash::Sha256(bytes) => WireRef::Sha256(bytes),
            ContentHash::Text(t) => WireRef::Text(t),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ContentHash, D::Error> {
        if d.is_human_readable() {
            return String::deserialize(d).map(ContentHash::from);
        }
        Ok(match Wire::deserialize(d)? {
            // Bytes are bytes; text that spells them is the same hash.
            Wire::Sha256(bytes) => ContentHash::Sha256(bytes),
            Wire::Text(t) => ContentHash::new(&t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn skillmeats_hashes_are_bytes_and_anything_else_is_kept_as_written() {
        let h = ContentHash::new(H);
        assert!(matches!(h, ContentHash::Sha256(_)));
        assert_eq!(h.to_string(), H);
        assert!(h.is(H));
        assert!(
            !h.is(&H.to_uppercase()),
            "another spelling is another record"
        );
        for odd in [&H.to_uppercase(), "d", "", &H[..63], &format!("{H}0")] {
            let t = ContentHash::new(odd);
            assert!(matches!(t, ContentHash::Text(_)), "{odd}");
            assert_eq!(t.to_string(), *odd);
            assert!(t.is(odd));
            assert!(!t.is(H));
        }
    }

    #[test]
    fn json_carries_the_text_and_binary_records_the_bytes() {
        for s in [H, "sha256:hand-written"] {
            let h = ContentHash::new(s);
            let json = serde_json::to_string(&h).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), h);
            let bin = postcard::to_stdvec(&h).unwrap();
            assert_eq!(postcard::from_bytes::<ContentHash>(&bin).unwrap(), h);
        }
        assert_eq!(postcard::to_stdvec(&ContentHash::new(H)).unwrap().len(), 33);
    }
}
