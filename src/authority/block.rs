//! One complete header block: decoded with the connection's persistent HPACK decoder
//! (loona-hpack), an `:authority` that h2 would refuse replaced by `localhost`, and its
//! fields re-encoded for h2 by [`super::encoder`], whose table mirrors h2's — so h2 reads
//! references to its table where the client sent references to the client's.
//!
//! Clients repeat their header blocks byte for byte (after the first request, a gRPC
//! channel's blocks are mostly references to its dynamic table), so the codec keeps the
//! last few blocks it transcoded with their output. The input's meaning depends on the
//! client's table, and the output's on h2's, so an entry is reused only while both tables
//! are as they were: a block is remembered only when it leaves both unchanged (on the
//! client's side: indexed fields and literals without indexing, no size update; on h2's:
//! nothing added), and any block that changes either (or an error) forgets them all.
//!
//! Only [`super::frames::Rewriter`] uses this, once per HEADERS(+CONTINUATION) block.

use loona_hpack::decoder::DecoderError;

use super::encoder::{Encoder, Indexing};
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

/// The connection's two HPACK contexts — the client's table (decoding) and h2's
/// (encoding) — and the blocks last transcoded in them.
pub(super) struct BlockCodec {
    decoder: loona_hpack::Decoder<'static>,
    encoder: Encoder,
    remembered: Vec<Transcoded>,
    /// Where the next block to remember goes once `remembered` is full.
    next: usize,
    /// How the client sent each field of the block being decoded (kept for its allocation).
    kinds: Vec<Indexing>,
}

/// A block that leaves both tables unchanged, and what it was transcoded to.
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
            encoder: Encoder::new(),
            remembered: Vec::new(),
            next: 0,
            kinds: Vec::new(),
        }
    }

    /// Decodes `block` and appends its fields to `out`, encoded for h2's table (see
    /// [`super::encoder`]). Returns whether an `:authority` was replaced. A block
    /// remembered (see the module doc) is not decoded again: its output is copied.
    /// `unread` says h2 will not decode this block (see [`Encoder::neutral`]).
    ///
    /// # Errors
    /// The block is not valid HPACK, or decodes to more than [`ABUSE_LIST_SIZE`] bytes
    /// (memory stays bounded: fields past the limit are not copied). Either ends the
    /// connection, so the tables need not agree afterwards.
    pub(super) fn transcode(
        &mut self,
        block: &[u8],
        unread: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, BlockError> {
        if let Some(known) = self.remembered.iter().find(|t| t.block == block) {
            out.extend_from_slice(&known.fields);
            return Ok(known.replaced);
        }
        let start = out.len();
        let client_table_kept = representations(block, &mut self.kinds);
        let transcoded = self.decode(block, unread, out);
        match transcoded {
            Ok((replaced, false)) if client_table_kept && !unread => {
                self.remember(block, &out[start..], replaced);
            }
            Ok((_, false)) if client_table_kept => {}
            // A table changed (or may have, up to an error): what was remembered may now
            // decode, or be decoded by h2, differently.
            _ => self.remembered.clear(),
        }
        transcoded.map(|(replaced, _)| replaced)
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

    /// [`BlockCodec::transcode`] without the remembered blocks; also returns whether h2's
    /// table changed.
    fn decode(
        &mut self,
        block: &[u8],
        unread: bool,
        out: &mut Vec<u8>,
    ) -> Result<(bool, bool), BlockError> {
        let mut size = 0usize;
        let mut too_large = false;
        let mut replaced = false;
        let mut changed = false;
        let mut kinds = self.kinds.iter();
        let encoder = &mut self.encoder;
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
            // A representation the walk could not follow: sent on without indexing,
            // which cannot change h2's table.
            let how = kinds.next().copied().unwrap_or(Indexing::No);
            if unread {
                encoder.neutral(&name, value, how, out);
            } else {
                changed |= encoder.field(&name, value, how, out);
            }
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
        Ok((replaced, changed))
    }
}

/// How the client sent each field of `block` (RFC 7541 §6), into `kinds`; returns
/// whether decoding it leaves the client's table as it was: every representation an
/// indexed field or a literal without indexing (or never indexed) — no literal with
/// incremental indexing, no table size update. Asked only of a block the decoder reads
/// without error; whatever the walk cannot follow counts as a change, and the fields
/// past it are sent without indexing.
fn representations(mut block: &[u8], kinds: &mut Vec<Indexing>) -> bool {
    kinds.clear();
    let mut kept = true;
    while let Some(&first) = block.first() {
        let (kind, rest) = match first {
            0x80.. => (Some(Indexing::Add), read_integer(block, 7).map(|(_, r)| r)),
            0x40..=0x7f => {
                kept = false;
                (Some(Indexing::Add), skip_literal(block, 6))
            }
            0x20..=0x3f => {
                kept = false;
                (None, read_integer(block, 5).map(|(_, r)| r))
            }
            0x10..=0x1f => (Some(Indexing::Never), skip_literal(block, 4)),
            0x00..=0x0f => (Some(Indexing::No), skip_literal(block, 4)),
        };
        let Some(rest) = rest else {
            return false;
        };
        kinds.extend(kind);
        block = rest;
    }
    kept
}

/// The bytes after the literal (name index with a `prefix`-bit prefix, then the name if
/// that is 0, then the value) at the start of `buf`.
fn skip_literal(buf: &[u8], prefix: u8) -> Option<&[u8]> {
    let (name, rest) = read_integer(buf, prefix)?;
    let rest = if name == 0 { skip_string(rest)? } else { rest };
    skip_string(rest)
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

#[cfg(test)]
mod tests {
    use loona_hpack::encoder::encode_integer_into;

    use super::*;

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn with_localhost(mut fields: Fields) -> Fields {
        for (name, value) in &mut fields {
            if name == b":authority" && refused_by_h2(value) {
                *value = REPLACEMENT.to_vec();
            }
        }
        fields
    }

    /// A client's block of `fields`, every one indexed (grpc C-core indexes what it
    /// sends on every call), encoded with the client's own table.
    fn indexed(client: &mut Encoder, fields: &Fields) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in fields {
            client.field(n, v, Indexing::Add, &mut out);
        }
        out
    }

    /// A codec and, beside it, what h2 holds: one decoder reading every block it is sent.
    struct Connection {
        codec: BlockCodec,
        h2: loona_hpack::Decoder<'static>,
    }

    impl Connection {
        fn new() -> Connection {
            Connection {
                codec: BlockCodec::new(),
                h2: loona_hpack::Decoder::new(),
            }
        }

        /// Transcodes `block`; h2 decodes the output. Returns (replaced, fields h2 read,
        /// output).
        fn send(&mut self, block: &[u8]) -> Result<(bool, Fields, Vec<u8>), BlockError> {
            let mut out = Vec::new();
            let replaced = self.codec.transcode(block, false, &mut out)?;
            Ok((replaced, self.h2.decode(&out).unwrap(), out))
        }
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
    fn replaces_only_an_invalid_authority_and_h2_reads_references() {
        let mut client = Encoder::new();
        let request = fields(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", "%2Ftmp%2Fd.sock"),
            ("te", "trailers"),
            ("user-agent", "grpc-python/1.85"),
        ]);
        let mut conn = Connection::new();
        let expected = with_localhost(request.clone());
        let (replaced, got, _) = conn.send(&indexed(&mut client, &request)).unwrap();
        assert!(replaced);
        assert_eq!(got, expected);
        // The second time, every field is one byte on both sides.
        let block = indexed(&mut client, &request);
        assert_eq!(block.len(), request.len());
        let (replaced, got, steady) = conn.send(&block).unwrap();
        assert!(replaced);
        assert_eq!(got, expected);
        assert_eq!(steady.len(), request.len(), "{steady:x?}");
        let valid = indexed(&mut client, &fields(&[(":authority", "localhost:1")]));
        let (replaced, got, _) = conn.send(&valid).unwrap();
        assert!(!replaced);
        assert_eq!(got, fields(&[(":authority", "localhost:1")]));
    }

    #[test]
    fn honours_table_size_updates() {
        let mut codec = BlockCodec::new();
        let mut out = Vec::new();
        // Size update to 0 (0x20), then a literal with incremental indexing: not stored.
        let block = [&[0x20, 0x40, 1, b'a', 1, b'b'][..], &[0x80 | 62]].concat();
        assert_eq!(
            codec.transcode(&block, false, &mut out),
            Err(BlockError::Hpack(DecoderError::HeaderIndexOutOfBounds))
        );
        // Past the advertised 4096: refused.
        let mut too_big = vec![];
        encode_integer_into(4097, 5, 0x20, &mut too_big).unwrap();
        assert_eq!(
            BlockCodec::new().transcode(&too_big, false, &mut out),
            Err(BlockError::Hpack(DecoderError::InvalidMaxDynamicSize))
        );
        // A block that only updates the size is fine.
        assert_eq!(
            BlockCodec::new().transcode(&[0x20], false, &mut out),
            Ok(false)
        );
    }

    #[test]
    fn a_repeated_block_is_transcoded_once_while_the_tables_stay() {
        let mut enc = loona_hpack::Encoder::new();
        let request = fields(&[
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", "%2Ftmp%2Fd.sock"),
            ("te", "trailers"),
        ]);
        let pairs = || request.iter().map(|(n, v)| (&n[..], &v[..]));
        let mut conn = Connection::new();
        // The first block indexes its fields: not remembered.
        conn.send(&enc.encode(pairs())).unwrap();
        assert!(conn.codec.remembered.is_empty());
        let steady = enc.encode(pairs());
        let (_, _, expected) = conn.send(&steady).unwrap();
        assert_eq!(conn.codec.remembered.len(), 1);
        for _ in 0..3 {
            let (replaced, got, out) = conn.send(&steady).unwrap();
            assert!(replaced);
            assert_eq!(got, with_localhost(request.clone()));
            assert_eq!(out, expected);
        }
        assert_eq!(conn.codec.remembered.len(), 1);
    }

    #[test]
    fn a_block_after_a_table_change_is_decoded_again() {
        let mut enc = loona_hpack::Encoder::new();
        let request = fields(&[(":authority", "%2Ftmp%2Fd.sock"), ("x-id", "1")]);
        let mut conn = Connection::new();
        let mut reference = loona_hpack::Decoder::new();
        // What h2 reads is what the client's block means, authority replaced.
        let mut check = |block: &[u8]| {
            let expected = reference
                .decode(block)
                .map(with_localhost)
                .map_err(BlockError::Hpack);
            assert_eq!(conn.send(block).map(|(_, got, _)| got), expected);
        };
        let pairs = request.iter().map(|(n, v)| (&n[..], &v[..]));
        check(&enc.encode(pairs.clone()));
        // Refers to entries 62 (x-id: 1) and 63 (:authority); remembered.
        let steady = enc.encode(pairs);
        check(&steady);
        check(&steady);
        // A new entry shifts the indices: the same bytes now mean other fields.
        check(&enc.encode([(&b"x-id"[..], &b"2"[..])]));
        check(&steady);
        check(&steady);
        // A size update that empties the table: the same bytes now refer to nothing.
        check(&[0x20, 0x82]);
        check(&steady);
    }

    #[test]
    fn h2_s_table_follows_its_own_evictions() {
        // The client's table holds the long socket path, h2's the short `localhost`: they
        // evict at different times, and references stay right on both sides.
        let path = format!("%2F{}", "d".repeat(300));
        let mut client = Encoder::new();
        let mut conn = Connection::new();
        let mut reference = loona_hpack::Decoder::new();
        for i in 0..200 {
            let request = fields(&[
                (":authority", &path),
                ("x-id", &format!("{}", i % 37)),
                ("x-big", &"b".repeat(i % 7 * 100)),
            ]);
            let block = indexed(&mut client, &request);
            let expected = with_localhost(reference.decode(&block).unwrap());
            assert_eq!(conn.send(&block).unwrap().1, expected, "request {i}");
        }
    }

    #[test]
    fn a_block_h2_does_not_read_leaves_its_table_alone() {
        let mut enc = loona_hpack::Encoder::new();
        let mut conn = Connection::new();
        let first = fields(&[(":authority", "/s.sock"), ("x-a", "1")]);
        conn.send(&enc.encode(first.iter().map(|(n, v)| (&n[..], &v[..]))))
            .unwrap();
        // h2 skips this block (it resets the stream first), so the block may refer to
        // h2's table but not add to it.
        let skipped = fields(&[("x-a", "1"), ("x-b", "2")]);
        let block = enc.encode(skipped.iter().map(|(n, v)| (&n[..], &v[..])));
        let mut out = Vec::new();
        conn.codec.transcode(&block, true, &mut out).unwrap();
        assert_eq!(
            loona_hpack::Decoder::new().decode(&out).ok(),
            None,
            "refers to h2's table"
        );
        // Not remembered: the same bytes, read by h2, must add what they add.
        assert!(conn.codec.remembered.is_empty());
        let next = fields(&[("x-b", "2"), ("x-a", "1")]);
        let block = enc.encode(next.iter().map(|(n, v)| (&n[..], &v[..])));
        assert_eq!(conn.send(&block).unwrap().1, next);
    }

    #[test]
    fn how_the_client_sent_each_field_is_kept() {
        let mut name_long = vec![0x0f, 0x80, 0x01]; // without indexing, name index 143
        name_long.extend([3, b'a', b'b', b'c']);
        use Indexing::{Add, Never, No};
        for (block, keeps, expected) in [
            (&[][..], true, &[][..]),
            (
                &[0x82, 0xbe, 0xff, 0x80, 0x01][..],
                true,
                &[Add, Add, Add][..],
            ), // 2, 62, 255
            (&[0x04, 0x02, b'/', b'x'][..], true, &[No]), // without indexing, name 4
            (&[0x00, 0x01, b'a', 0x01, b'b'][..], true, &[No]), // literal name
            (&[0x10, 0x01, b'a', 0x81, 0xff][..], true, &[Never]), // Huffman value
            (&name_long[..], true, &[No]),
            (&[0x82, 0x44, 0x02, b'/', b'x'][..], false, &[Add, Add]), // incremental indexing
            (&[0x20, 0x82][..], false, &[Add]),                        // size update
            (&[0x82, 0x3f, 0xe1, 0x1f][..], false, &[Add]),            // size update (4096), last
            (&[0x04, 0x05, b'/'][..], false, &[]),                     // cut short
            (&[0xff, 0x80, 0x80, 0x80, 0x80, 0x01][..], false, &[]),   // integer too long
        ] {
            let mut kinds = Vec::new();
            assert_eq!(representations(block, &mut kinds), keeps, "{block:x?}");
            assert_eq!(kinds, expected, "{block:x?}");
        }
    }

    #[test]
    fn a_never_indexed_field_stays_never_indexed() {
        let block = [&[0x10, 6][..], b"secret", &[1], b"s"].concat();
        let (_, got, out) = Connection::new().send(&block).unwrap();
        assert_eq!(got, fields(&[("secret", "s")]));
        assert_eq!(out[0] & 0xf0, 0x10);
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
        assert_eq!(
            codec.transcode(&block, false, &mut out),
            Err(BlockError::TooLarge)
        );
        assert!(out.len() <= ABUSE_LIST_SIZE, "{}", out.len());
    }
}
