//! One complete header block: decoded with the connection's persistent HPACK decoder
//! (loona-hpack), its fields re-encoded without indexing — a reference to the static table
//! where it holds the field or its name (cheaper for h2 to read than a literal), a literal
//! otherwise — and an `:authority` that h2 would refuse replaced by `localhost`.
//!
//! Clients repeat their header blocks byte for byte (after the first request, a gRPC
//! channel's blocks are mostly references to its dynamic table), so the codec keeps the
//! last few blocks it transcoded with their output. Decoding depends on the bytes and on
//! the dynamic table, so an entry is reused only while the table is as it was: a block is
//! remembered only when it leaves the table unchanged (indexed fields and literals without
//! indexing, no size update), and any block that changes the table (a literal with
//! incremental indexing, a size update, an error) forgets them all.
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

/// How many transcoded blocks a connection remembers (a channel calling a few methods).
const REMEMBERED: usize = 4;
/// The largest block, and output, remembered: a usual request's headers, not a huge one
/// pinned for the life of the connection.
const REMEMBERED_SIZE: usize = 4096;

/// The connection's HPACK decoding context (the client's dynamic table), and the blocks
/// last transcoded in it.
pub(super) struct BlockCodec {
    decoder: loona_hpack::Decoder<'static>,
    remembered: Vec<Transcoded>,
    /// Where the next block to remember goes once `remembered` is full.
    next: usize,
}

/// A block that leaves the table unchanged, and what it was transcoded to.
struct Transcoded {
    block: Vec<u8>,
    fields: Vec<u8>,
    replaced: bool,
}

impl BlockCodec {
    pub(super) fn new() -> BlockCodec {
        let mut decoder = loona_hpack::Decoder::new();
        // The client may not grow its table past what the server advertised
        // (SETTINGS_HEADER_TABLE_SIZE, left at the protocol default by h2).
        decoder.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        BlockCodec {
            decoder,
            remembered: Vec::new(),
            next: 0,
        }
    }

    /// Decodes `block` and appends its fields to `out`, each as a literal without indexing,
    /// so the server's own decoder never stores an entry and its table cannot diverge from
    /// anything. Returns whether an `:authority` was replaced. A block remembered (see the
    /// module doc) is not decoded again: its output is copied.
    ///
    /// # Errors
    /// The block is not valid HPACK, or decodes to more than [`ABUSE_LIST_SIZE`] bytes
    /// (memory stays bounded: fields past the limit are not copied).
    pub(super) fn transcode(
        &mut self,
        block: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, BlockError> {
        if let Some(known) = self.remembered.iter().find(|t| t.block == block) {
            out.extend_from_slice(&known.fields);
            return Ok(known.replaced);
        }
        let start = out.len();
        let transcoded = self.decode(block, out);
        match transcoded {
            Ok(replaced) if keeps_table(block) => {
                self.remember(block, &out[start..], replaced);
            }
            // The table changed (or may have, up to an error): what was remembered may
            // now decode differently.
            _ => self.remembered.clear(),
        }
        transcoded
    }

    fn remember(&mut self, block: &[u8], fields: &[u8], replaced: bool) {
        if block.len() > REMEMBERED_SIZE || fields.len() > REMEMBERED_SIZE {
            return;
        }
        if self.remembered.len() < REMEMBERED {
            self.remembered.push(Transcoded {
                block: block.to_vec(),
                fields: fields.to_vec(),
                replaced,
            });
            return;
        }
        let slot = &mut self.remembered[self.next];
        self.next = (self.next + 1) % REMEMBERED;
        slot.block.clear();
        slot.block.extend_from_slice(block);
        slot.fields.clear();
        slot.fields.extend_from_slice(fields);
        slot.replaced = replaced;
    }

    /// [`BlockCodec::transcode`] without the remembered blocks.
    fn decode(&mut self, block: &[u8], out: &mut Vec<u8>) -> Result<bool, BlockError> {
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

/// Whether decoding `block` leaves the dynamic table as it was (RFC 7541 §6): every
/// representation is an indexed field or a literal without indexing (or never indexed) —
/// no literal with incremental indexing, no table size update. Asked only of a block the
/// decoder has just read without error; whatever it cannot follow counts as a change.
fn keeps_table(mut block: &[u8]) -> bool {
    while let Some(&first) = block.first() {
        let rest = match first {
            0x80.. => read_integer(block, 7).map(|(_, rest)| rest),
            0x00..=0x1f => read_integer(block, 4).and_then(|(name, rest)| {
                let rest = if name == 0 { skip_string(rest)? } else { rest };
                skip_string(rest)
            }),
            // 0x20..=0x3f: a size update; 0x40..=0x7f: a literal with incremental indexing.
            _ => None,
        };
        match rest {
            Some(rest) => block = rest,
            None => return false,
        }
    }
    true
}

/// The integer with an `prefix`-bit prefix at the start of `buf` (RFC 7541 §5.1), and
/// the bytes after it; `None` when it is cut short or longer than the decoder accepts.
fn read_integer(buf: &[u8], prefix: u8) -> Option<(usize, &[u8])> {
    let mask = (1u8 << prefix) - 1;
    let (&first, mut rest) = buf.split_first()?;
    let mut value = usize::from(first & mask);
    if value < usize::from(mask) {
        return Some((value, rest));
    }
    for shift in [0, 7, 14, 21] {
        let (&octet, tail) = rest.split_first()?;
        rest = tail;
        value += usize::from(octet & 0x7f) << shift;
        if octet & 0x80 == 0 {
            return Some((value, rest));
        }
    }
    None
}

/// The bytes after the string literal at the start of `buf` (RFC 7541 §5.2).
fn skip_string(buf: &[u8]) -> Option<&[u8]> {
    let (len, rest) = read_integer(buf, 7)?;
    rest.get(len..)
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
    fn a_repeated_block_is_transcoded_once_while_the_table_stays() {
        let mut enc = loona_hpack::Encoder::new();
        let request = fields(&[
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", "%2Ftmp%2Fd.sock"),
            ("te", "trailers"),
        ]);
        let pairs = || request.iter().map(|(n, v)| (&n[..], &v[..]));
        let mut codec = BlockCodec::new();
        let mut out = Vec::new();
        // The first block indexes its fields: not remembered.
        let first = enc.encode(pairs());
        assert_eq!(codec.transcode(&first, &mut out), Ok(true));
        assert!(codec.remembered.is_empty());
        let steady = enc.encode(pairs());
        assert!(keeps_table(&steady));
        let mut expected = Vec::new();
        assert_eq!(codec.transcode(&steady, &mut expected), Ok(true));
        assert_eq!(codec.remembered.len(), 1);
        for _ in 0..3 {
            out.clear();
            assert_eq!(codec.transcode(&steady, &mut out), Ok(true));
            assert_eq!(out, expected);
        }
        assert_eq!(codec.remembered.len(), 1);
    }

    #[test]
    fn a_block_after_a_table_change_is_decoded_again() {
        let mut enc = loona_hpack::Encoder::new();
        let request = fields(&[(":authority", "%2Ftmp%2Fd.sock"), ("x-id", "1")]);
        let mut codec = BlockCodec::new();
        let mut reference = loona_hpack::Decoder::new();
        let mut transcode = |block: &[u8]| {
            let mut out = Vec::new();
            let result = codec.transcode(block, &mut out);
            let mut expected = reference.decode(block).map_err(BlockError::Hpack);
            if let Ok(fields) = &mut expected {
                for (name, value) in fields.iter_mut() {
                    if name == b":authority" {
                        *value = REPLACEMENT.to_vec();
                    }
                }
            }
            result.map(|_| decode_fresh(&out)).map_err(|e| (e, out))
                == expected.map_err(|e| (e, Vec::new()))
        };
        let pairs = request.iter().map(|(n, v)| (&n[..], &v[..]));
        assert!(transcode(&enc.encode(pairs.clone())));
        // Refers to entries 62 (x-id: 1) and 63 (:authority); remembered.
        let steady = enc.encode(pairs);
        assert!(transcode(&steady));
        assert!(transcode(&steady));
        // A new entry shifts the indices: the same bytes now mean other fields.
        assert!(transcode(&enc.encode([(&b"x-id"[..], &b"2"[..])])));
        assert!(transcode(&steady));
        assert!(transcode(&steady));
        // A size update that empties the table: the same bytes now refer to nothing.
        assert!(transcode(&[0x20, 0x82]));
        let mut out = Vec::new();
        assert_eq!(
            codec.transcode(&steady, &mut out),
            Err(BlockError::Hpack(DecoderError::HeaderIndexOutOfBounds))
        );
    }

    #[test]
    fn blocks_that_change_the_table_are_told_apart() {
        let mut name_long = vec![0x0f, 0x80, 0x01]; // without indexing, name index 143
        name_long.extend([3, b'a', b'b', b'c']);
        for (block, keeps) in [
            (&[][..], true),
            (&[0x82, 0xbe, 0xff, 0x80, 0x01][..], true), // indexed: 2, 62, 255
            (&[0x04, 0x02, b'/', b'x'][..], true),       // without indexing, name 4
            (&[0x00, 0x01, b'a', 0x01, b'b'][..], true), // without indexing, literal name
            (&[0x10, 0x01, b'a', 0x81, 0xff][..], true), // never indexed, Huffman value
            (&name_long[..], true),
            (&[0x82, 0x44, 0x02, b'/', b'x'][..], false), // incremental indexing
            (&[0x20, 0x82][..], false),                   // size update
            (&[0x82, 0x3f, 0xe1, 0x1f][..], false),       // size update (4096), last
            (&[0x04, 0x05, b'/'][..], false),             // cut short
            (&[0xff, 0x80, 0x80, 0x80, 0x80, 0x01][..], false), // integer too long
        ] {
            assert_eq!(keeps_table(block), keeps, "{block:x?}");
        }
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
