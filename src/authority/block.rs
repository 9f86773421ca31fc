//! One complete header block: decoded with the connection's persistent HPACK decoder
//! (loona-hpack), its fields re-encoded without indexing — a reference to the static table
//! where it holds the field or its name (cheaper for h2 to read than a literal), a literal
//! otherwise — and an `:authority` that h2 would refuse replaced by `localhost`.
//!
//! Only [`super::frames::Rewriter`] uses this, once per HEADERS(+CONTINUATION) block.

use std::sync::OnceLock;

use loona_hpack::decoder::DecoderError;
use loona_hpack::encoder::encode_integer_into;

use super::{HEADER_TABLE_SIZE, MAX_HEADER_LIST_SIZE};

/// h2 aborts the connection (ENHANCE_YOUR_CALM) when a decoded header list passes four
/// times SETTINGS_MAX_HEADER_LIST_SIZE (its `MAX_HEADER_LIST_ABUSE_MULTIPLIER`); below that
/// it refuses just the stream (431 / REFUSED_STREAM), which it still does here, since the
/// re-encoded block carries the same fields.
pub(super) const ABUSE_LIST_SIZE: usize = 4 * MAX_HEADER_LIST_SIZE as usize;

/// What h2 puts in place of an `:authority` it cannot parse: the name tonic, grpc-go and
/// grpc-js use for a Unix socket.
pub(super) const REPLACEMENT: &[u8] = b"localhost";

/// Why a header block cannot be passed on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlockError {
    /// The block is not valid HPACK for this connection's decoder state.
    #[error("HPACK decoding failed: {0}")]
    Hpack(DecoderError),
    /// The decoded fields pass the size at which h2 aborts the connection.
    #[error("decoded header list is larger than {ABUSE_LIST_SIZE} bytes")]
    TooLarge,
}

/// The connection's HPACK decoding context (the client's dynamic table).
pub(super) struct BlockCodec {
    decoder: loona_hpack::Decoder<'static>,
}

impl BlockCodec {
    pub(super) fn new() -> BlockCodec {
        let mut decoder = loona_hpack::Decoder::new();
        // The client may not grow its table past what the server advertised
        // (SETTINGS_HEADER_TABLE_SIZE, left at the protocol default by h2).
        decoder.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        BlockCodec { decoder }
    }

    /// Decodes `block` and appends its fields to `out`, each as a literal without indexing,
    /// so the server's own decoder never stores an entry and its table cannot diverge from
    /// anything. Returns whether an `:authority` was replaced.
    ///
    /// # Errors
    /// The block is not valid HPACK, or decodes to more than [`ABUSE_LIST_SIZE`] bytes
    /// (memory stays bounded: fields past the limit are not copied).
    pub(super) fn transcode(
        &mut self,
        block: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, BlockError> {
        let mut size = 0usize;
        let mut too_large = false;
        let mut replaced = false;
        let decoded = self.decoder.decode_with_cb(block, |name, value| {
            // Sizes as HPACK and h2 count them (RFC 7541 §4.1).
            size = size.saturating_add(name.len() + value.len() + 32);
            if too_large || size > ABUSE_LIST_SIZE {
                too_large = true;
                return;
            }
            let value: &[u8] = if &*name == b":authority" && refused_by_h2(&value) {
                replaced = true;
                REPLACEMENT
            } else {
                &value
            };
            field(&name, value, out);
        });
        match decoded {
            Ok(()) => {}
            // A block may end with a table size update (RFC 7541 §4.2 asks only that it
            // comes first); loona-hpack has applied it and reports it as an error.
            Err(DecoderError::SizeUpdateAtEnd) => {}
            Err(e) => return Err(BlockError::Hpack(e)),
        }
        if too_large {
            return Err(BlockError::TooLarge);
        }
        Ok(replaced)
    }
}

/// Whether h2 would reset a request carrying this `:authority` as malformed: it parses the
/// value as `http::uri::Authority` (host[:port]), which a socket path — raw
/// (`/run/x.sock`, grpcurl, grpc-java) or percent-encoded (`%2Frun%2Fx.sock`, grpc C-core)
/// — is not. A value that is not UTF-8 is left alone: h2 rejects it while decoding, and
/// that stays so.
pub(super) fn refused_by_h2(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok() && http::uri::Authority::try_from(value).is_err()
}

/// One field, without touching the dynamic table (RFC 7541 §6.1, §6.2.2): the static
/// table's index when it holds the field, else a literal with the static table's index of
/// the name when it holds that, else a literal with the name; strings raw. (Writing into a
/// Vec cannot fail.)
fn field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let table = static_table();
    let mut name_index = 0;
    for (i, (n, v)) in table.iter().enumerate() {
        if n == name {
            if v == value {
                let _ = encode_integer_into(i + 1, 7, 0x80, out);
                return;
            }
            if name_index == 0 {
                name_index = i + 1;
            }
        }
    }
    let _ = encode_integer_into(name_index, 4, 0x00, out);
    if name_index == 0 {
        string(name, out);
    }
    string(value, out);
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    let _ = encode_integer_into(s.len(), 7, 0x00, out);
    out.extend_from_slice(s);
}

/// HPACK's static table (RFC 7541 Appendix A), read once through loona-hpack's decoder:
/// entry `i` is what the one-byte representation "indexed, `i`" decodes to.
fn static_table() -> &'static [(Vec<u8>, Vec<u8>)] {
    static TABLE: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut decoder = loona_hpack::Decoder::new();
        (1..=STATIC_ENTRIES)
            .map_while(|i| decoder.decode(&[0x80 | i]).ok()?.pop())
            .collect()
    })
}

/// Entries in HPACK's static table.
const STATIC_ENTRIES: u8 = 61;

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_fresh(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        loona_hpack::Decoder::new().decode(block).unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn socket_paths_are_refused_by_h2_host_names_are_not() {
        for bad in [
            "/run/user/1000/skillmeatd/skillmeatd.sock",
            "%2Ftmp%2Fd.sock",
            "",
        ] {
            assert!(refused_by_h2(bad.as_bytes()), "{bad}");
        }
        for good in [
            "localhost",
            "localhost:50051",
            "127.0.0.1:1",
            "[::1]:8080",
            "x.invalid",
        ] {
            assert!(!refused_by_h2(good.as_bytes()), "{good}");
        }
        assert!(
            !refused_by_h2(b"\xff\xfe"),
            "not UTF-8: h2's own error stays"
        );
    }

    #[test]
    fn replaces_only_an_invalid_authority_and_never_indexes() {
        let mut enc = loona_hpack::Encoder::new();
        let request = fields(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", "%2Ftmp%2Fd.sock"),
            ("te", "trailers"),
            ("user-agent", "grpc-python/1.85"),
        ]);
        let mut codec = BlockCodec::new();
        // Twice: the second block is all dynamic-table references for the decoder.
        for _ in 0..2 {
            let block = enc.encode(request.iter().map(|(n, v)| (&n[..], &v[..])));
            let mut out = Vec::new();
            assert_eq!(codec.transcode(&block, &mut out), Ok(true));
            let mut expected = request.clone();
            expected[3].1 = b"localhost".to_vec();
            // A fresh decoder reads it: nothing refers to a dynamic table.
            assert_eq!(decode_fresh(&out), expected);
            // Nothing was inserted into the receiver's table: index 62 does not exist.
            let probe = [&out[..], &[0x80 | 62]].concat();
            assert_eq!(
                loona_hpack::Decoder::new().decode(&probe),
                Err(DecoderError::HeaderIndexOutOfBounds)
            );
        }
        let mut out = Vec::new();
        let valid = enc.encode([(&b":authority"[..], &b"localhost:1"[..])]);
        assert_eq!(codec.transcode(&valid, &mut out), Ok(false));
        assert_eq!(decode_fresh(&out), fields(&[(":authority", "localhost:1")]));
    }

    #[test]
    fn the_static_table_is_used_for_names_and_fields() {
        assert_eq!(static_table().len(), usize::from(STATIC_ENTRIES));
        let mut out = Vec::new();
        field(b":method", b"POST", &mut out); // entry 3
        field(b":path", b"/x", &mut out); // name 4
        field(b"te", b"trailers", &mut out); // not in the table
        assert_eq!(
            out,
            [
                &[0x83, 0x04, 2][..],
                b"/x",
                &[0, 2],
                b"te",
                &[8],
                b"trailers"
            ]
            .concat()
        );
    }

    #[test]
    fn honours_table_size_updates() {
        let mut codec = BlockCodec::new();
        let mut out = Vec::new();
        // Size update to 0 (0x20), then a literal with incremental indexing: not stored.
        let block = [&[0x20, 0x40, 1, b'a', 1, b'b'][..], &[0x80 | 62]].concat();
        assert_eq!(
            codec.transcode(&block, &mut out),
            Err(BlockError::Hpack(DecoderError::HeaderIndexOutOfBounds))
        );
        // Past the advertised 4096: refused.
        let mut too_big = vec![];
        encode_integer_into(4097, 5, 0x20, &mut too_big).unwrap();
        assert_eq!(
            BlockCodec::new().transcode(&too_big, &mut out),
            Err(BlockError::Hpack(DecoderError::InvalidMaxDynamicSize))
        );
        // A block that only updates the size is fine.
        assert_eq!(BlockCodec::new().transcode(&[0x20], &mut out), Ok(false));
    }

    #[test]
    fn a_header_list_bomb_stops_at_the_abuse_limit() {
        let mut codec = BlockCodec::new();
        let big = "v".repeat(4000);
        let mut enc = loona_hpack::Encoder::new();
        let mut block = enc.encode([(&b"x-big"[..], big.as_bytes())]);
        // Each index byte repeats the 4 KB entry: a 100-byte block decodes to 400 KB.
        block.extend(std::iter::repeat_n(0x80 | 62, 100));
        let mut out = Vec::new();
        assert_eq!(codec.transcode(&block, &mut out), Err(BlockError::TooLarge));
        assert!(out.len() <= ABUSE_LIST_SIZE, "{}", out.len());
    }
}
