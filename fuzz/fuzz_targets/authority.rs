//! Client bytes → the authority layer's rewriter (`skillmeatd::authority::Rewriter`): it
//! never panics and gives the same output however the bytes are split into reads, whether
//! it copies them (`feed`) or rewrites each read where it lies (`rewrite_in_place`). A
//! connection it does not rewrite reaches h2 byte for byte; on a rewritten one (the input
//! may start with a request naming the socket path), h2's side is played by one HPACK
//! decoder reading, in order, every header block h2 would decode (all but those of a stream
//! that depends on itself, which h2 resets unread): each must decode against that one
//! table — the rewriter's mirror of it never diverges —, carry no `:authority` h2 would
//! refuse, and hold the fields the client's block decodes to with the client's table at
//! that point (a reference decoder reads the input's blocks in order) — so a block the
//! rewriter remembered is never reused after either table changed.
//!
//! The input is a list of pieces, each raw bytes or a header block built from its bytes:
//! as they are, a repeat of an earlier block's bytes, fields encoded by one persistent
//! HPACK encoder (indexing what it has not seen), optionally after a table size update, or
//! such fields framed with priority (on another stream or its own), padding and
//! CONTINUATION frames.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use loona_hpack::decoder::DecoderError;
use skillmeatd::authority::{HEADER_TABLE_SIZE, MAX_FRAME_SIZE, Rewriter};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

const SOCKET_PATH: &[u8] = b"%2Frun%2Fs.sock";
/// Fields the encoder pieces pick from, one byte each.
const NAMES: [&[u8]; 8] = [
    b":authority",
    b":path",
    b":method",
    b"te",
    b"grpc-timeout",
    b"x-id",
    b"user-agent",
    b"content-type",
];
const VALUES: [&[u8]; 8] = [
    SOCKET_PATH,
    b"/run/s.sock",
    b"localhost",
    b"POST",
    b"/grpc.health.v1.Health/Check",
    b"1",
    b"",
    b"application/grpc",
];

fuzz_target!(|input: (u8, bool, Vec<(u8, Vec<u8>)>)| {
    let (step, socket_path_first, pieces) = input;
    let mut client = Client::default();
    let mut stream = PREFACE.to_vec();
    if socket_path_first {
        // A grpcio-like first request (indexed, so later blocks may refer to it).
        let block = client.encoder.encode([
            (&b":method"[..], &b"POST"[..]),
            (b":authority", SOCKET_PATH),
            (b":path", b"/grpc.health.v1.Health/Check"),
        ]);
        client.headers(&mut stream, block);
    }
    for (how, bytes) in &pieces {
        client.piece(*how, bytes, &mut stream);
    }

    let mut whole = Rewriter::new();
    let mut out = BytesMut::new();
    whole.feed(&stream, &mut out);

    let mut split = Rewriter::new();
    let mut out_split = BytesMut::new();
    for piece in stream.chunks(usize::from(step).max(1)) {
        split.feed(piece, &mut out_split);
    }
    assert_eq!(out, out_split, "output depends on how the input was split");

    // The same reads rewritten in place, as the connection does in h2's buffer.
    let mut in_place = Rewriter::new();
    let (mut out_in_place, mut pending) = (Vec::new(), BytesMut::new());
    for piece in stream.chunks(usize::from(step).max(1)) {
        let mut buf = piece.to_vec();
        let kept = in_place.rewrite_in_place(&mut buf, &mut pending);
        out_in_place.extend(&buf[..kept]);
        out_in_place.extend(pending.split());
    }
    assert_eq!(out, out_in_place, "rewriting in place changed the output");
    assert_eq!(whole.refusal(), in_place.refusal());
    assert_eq!(whole.refusal(), split.refusal());
    assert_eq!(whole.rewrites(), split.rewrites());
    assert!(whole.rewrites() || !socket_path_first);

    if whole.rewrites() {
        assert_eq!(&out[..PREFACE.len()], PREFACE);
        let mut h2 = loona_hpack::Decoder::new();
        h2.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        let sent = blocks(&out[PREFACE.len()..], |block, unread| {
            (!unread).then(|| {
                h2.decode(block)
                    .expect("a rewritten block decodes against h2's table")
            })
        });
        for (_, value) in sent
            .iter()
            .flatten()
            .flatten()
            .filter(|(n, _)| n == b":authority")
        {
            assert!(
                !refused_by_h2(value),
                "h2 would refuse :authority {value:?}"
            );
        }
        let mut reference = loona_hpack::Decoder::new();
        reference.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        let expected = blocks(&stream[PREFACE.len()..], |block, _| {
            let mut fields = Vec::new();
            match reference.decode_with_cb(block, |n, v| {
                let v = if &*n == b":authority" && refused_by_h2(&v) {
                    b"localhost".to_vec()
                } else {
                    v.into_owned()
                };
                fields.push((n.into_owned(), v));
            }) {
                Ok(()) | Err(DecoderError::SizeUpdateAtEnd) => Some(fields),
                Err(_) => None,
            }
        });
        // The rewriter may stop earlier (a header list past h2's limit), never later.
        let ok = expected.iter().take_while(|b| b.is_some()).count();
        assert!(
            sent.len() <= ok,
            "{} blocks passed, {ok} decodable",
            sent.len()
        );
        for (i, (got, want)) in sent.iter().zip(&expected).enumerate() {
            if let Some(got) = got {
                assert_eq!(Some(got), want.as_ref(), "header block {i}");
            }
        }
    } else {
        assert!(
            stream.starts_with(&out),
            "a connection not rewritten was changed"
        );
    }
});

/// The client: header blocks it sent, and its HPACK encoder.
#[derive(Default)]
struct Client {
    encoder: loona_hpack::Encoder<'static>,
    sent: Vec<Vec<u8>>,
    next_stream: u32,
}

impl Client {
    fn piece(&mut self, how: u8, bytes: &[u8], stream: &mut Vec<u8>) {
        match how % 6 {
            0 => stream.extend_from_slice(bytes),
            1 => self.headers(stream, bytes.to_vec()),
            2 if !self.sent.is_empty() => {
                let i = usize::from(bytes.first().copied().unwrap_or(0)) % self.sent.len();
                self.headers(stream, self.sent[i].clone());
            }
            3 => {
                let block = self.encoder.encode(picked(bytes));
                self.headers(stream, block);
            }
            4 if bytes.len() >= 2 => {
                // Past the advertised size now and then: the connection is refused.
                let size = usize::from(u16::from_be_bytes([bytes[0], bytes[1]])) % 4200;
                let mut block = Vec::new();
                loona_hpack::encoder::encode_integer_into(size, 5, 0x20, &mut block).unwrap();
                self.encoder.set_max_table_size(size);
                self.encoder
                    .encode_into(picked(&bytes[2..]), &mut block)
                    .unwrap();
                self.headers(stream, block);
            }
            5 if bytes.len() >= 3 => {
                let block = self.encoder.encode(picked(&bytes[3..]));
                self.framed(stream, block, bytes[0], bytes[1], bytes[2]);
            }
            _ => {}
        }
    }

    /// `block` on the next stream, framed as `how` says: bit 0, priority on the stream
    /// itself; bit 1, priority on stream 1; bit 2, `pad` bytes of padding; bit 3, split
    /// into a HEADERS and a CONTINUATION frame at `at`.
    fn framed(&mut self, stream: &mut Vec<u8>, block: Vec<u8>, how: u8, pad: u8, at: u8) {
        let id = self.next_stream * 2 + 1;
        self.next_stream += 1;
        let mut flags = 0;
        let mut payload = Vec::new();
        if how & 4 != 0 {
            flags |= PADDED;
            payload.push(pad);
        }
        if how & 3 != 0 {
            flags |= PRIORITY;
            let dep = if how & 1 != 0 { id } else { 1 };
            payload.extend(dep.to_be_bytes());
            payload.push(16);
        }
        let at = if how & 8 != 0 {
            usize::from(at).min(block.len())
        } else {
            block.len()
        };
        payload.extend(&block[..at]);
        if how & 4 != 0 {
            payload.extend(std::iter::repeat_n(0, usize::from(pad)));
        }
        let end = if at == block.len() { END_HEADERS } else { 0 };
        frame(stream, HEADERS, flags | end, id, &payload);
        if end == 0 {
            frame(stream, CONTINUATION, END_HEADERS, id, &block[at..]);
        }
        self.sent.push(block);
    }

    /// `block` in one HEADERS frame on the next stream.
    fn headers(&mut self, stream: &mut Vec<u8>, block: Vec<u8>) {
        let id = self.next_stream * 2 + 1;
        self.next_stream += 1;
        frame(stream, HEADERS, END_HEADERS, id, &block);
        self.sent.push(block);
    }
}

fn frame(stream: &mut Vec<u8>, kind: u8, flags: u8, id: u32, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    stream.extend([len[1], len[2], len[3], kind, flags]);
    stream.extend(id.to_be_bytes());
    stream.extend(payload);
}

/// One field per byte, from [`NAMES`] and [`VALUES`].
fn picked(bytes: &[u8]) -> impl Iterator<Item = (&'static [u8], &'static [u8])> + '_ {
    bytes
        .iter()
        .map(|b| (NAMES[usize::from(b & 7)], VALUES[usize::from(b >> 3 & 7)]))
}

/// Each complete header block in `frames` (padding and priority removed, CONTINUATIONs
/// joined), read by `decode` with whether h2 leaves it unread (a stream that depends on
/// itself), up to the first frame the rewriter would stop at. A HEADERS frame on stream 0
/// (the rewriter's way of ending a connection) is no block.
fn blocks<T>(mut frames: &[u8], mut decode: impl FnMut(&[u8], bool) -> T) -> Vec<T> {
    let mut decoded = Vec::new();
    // The block being joined, its stream, and whether h2 leaves it unread.
    let mut block: Option<(u32, Vec<u8>, bool)> = None;
    while frames.len() >= 9 {
        let len = u32::from_be_bytes([0, frames[0], frames[1], frames[2]]) as usize;
        let (kind, flags) = (frames[3], frames[4]);
        let stream = u32::from_be_bytes([frames[5], frames[6], frames[7], frames[8]]) & 0x7fff_ffff;
        let Some(payload) = frames.get(9..9 + len) else {
            break;
        };
        frames = &frames[9 + len..];
        if len > MAX_FRAME_SIZE as usize || kind == PUSH_PROMISE {
            break;
        }
        match (kind, &mut block) {
            (HEADERS, None) if stream != 0 => match fragment(flags, payload) {
                Some((fragment, dep)) => {
                    block = Some((stream, fragment.to_vec(), dep == Some(stream)));
                }
                None => break,
            },
            (CONTINUATION, Some((id, b, _))) if *id == stream => b.extend_from_slice(payload),
            (HEADERS | CONTINUATION, _) | (_, Some(_)) => break,
            (_, None) => continue,
        }
        if flags & END_HEADERS != 0 {
            if let Some((_, b, unread)) = block.take() {
                decoded.push(decode(&b, unread));
            }
        }
    }
    decoded
}

/// A HEADERS frame's block fragment (its payload without padding and priority), and the
/// stream it depends on.
fn fragment(flags: u8, mut payload: &[u8]) -> Option<(&[u8], Option<u32>)> {
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&n, rest) = payload.split_first()?;
        pad = usize::from(n);
        payload = rest;
    }
    let mut dep = None;
    if flags & PRIORITY != 0 {
        let (p, rest) = payload.split_first_chunk::<5>()?;
        dep = Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff);
        payload = rest;
    }
    Some((payload.get(..payload.len().checked_sub(pad)?)?, dep))
}

fn refused_by_h2(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok() && http::uri::Authority::try_from(value).is_err()
}
