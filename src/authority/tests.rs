//! The rewriter on hand-made frames (this file) and in front of a real tonic server
//! ([`server`]).

mod server;

use bytes::BytesMut;

use super::MAX_FRAME_SIZE;
use super::block::{ABUSE_LIST_SIZE, BlockError};
use super::frames::{Refusal, Rewriter};

pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const PUSH_PROMISE: u8 = 0x5;
pub(super) const GOAWAY: u8 = 0x7;
pub(super) const CONTINUATION: u8 = 0x9;
pub(super) const END_STREAM: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
pub(super) const PRIORITY: u8 = 0x20;

/// One frame, as bytes on the wire.
pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// The frames in `bytes` (whole frames only).
pub(super) fn parse(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        assert!(bytes.len() >= 9 + len, "truncated frame in {bytes:?}");
        frames.push(Frame {
            kind: bytes[3],
            flags: bytes[4],
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]),
            payload: bytes[9..9 + len].to_vec(),
        });
        bytes = &bytes[9 + len..];
    }
    assert!(bytes.is_empty(), "trailing bytes {bytes:?}");
    frames
}

pub(super) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

pub(super) fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// A gRPC request's header fields, as grpcio sends them.
pub(super) fn request(authority: &str) -> Fields {
    fields(&[
        (":scheme", "http"),
        (":method", "POST"),
        (":authority", authority),
        (":path", "/grpc.health.v1.Health/Check"),
        ("te", "trailers"),
        ("content-type", "application/grpc"),
        (
            "user-agent",
            "grpc-python/1.85.3 grpc-c/52.0.0 (linux; chttp2)",
        ),
    ])
}

pub(super) fn encode(enc: &mut loona_hpack::Encoder<'_>, fields: &Fields) -> Vec<u8> {
    enc.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])))
}

fn run(rw: &mut Rewriter, input: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    rw.feed(input, &mut out);
    out.to_vec()
}

/// Feeds `input` in pieces of `step` bytes.
fn run_split(input: &[u8], step: usize) -> (Vec<u8>, Rewriter) {
    let mut rw = Rewriter::new();
    let mut out = BytesMut::new();
    for piece in input.chunks(step) {
        rw.feed(piece, &mut out);
    }
    (out.to_vec(), rw)
}

/// The header blocks of `frames` decoded in order by one decoder, as h2 decodes them.
fn blocks(frames: &[Frame]) -> Vec<Fields> {
    let mut h2 = loona_hpack::Decoder::new();
    let mut out = Vec::new();
    let mut block = Vec::new();
    for f in frames
        .iter()
        .filter(|f| f.kind == HEADERS || f.kind == CONTINUATION)
    {
        let mut p = &f.payload[..];
        if f.kind == HEADERS && f.flags & PRIORITY != 0 {
            p = &p[5..];
        }
        assert_eq!(f.flags & PADDED, 0, "padding is dropped");
        assert!(f.payload.len() <= MAX_FRAME_SIZE as usize);
        block.extend_from_slice(p);
        if f.flags & END_HEADERS != 0 {
            out.push(h2.decode(&block).unwrap());
            block.clear();
        }
    }
    assert!(block.is_empty(), "a block without END_HEADERS");
    out
}

fn after_preface(out: &[u8]) -> Vec<Frame> {
    assert_eq!(&out[..PREFACE.len()], PREFACE);
    parse(&out[PREFACE.len()..])
}

pub(super) fn with_authority(fields: &Fields, authority: &str) -> Fields {
    let mut f = fields.clone();
    for (n, v) in &mut f {
        if n == b":authority" {
            *v = authority.as_bytes().to_vec();
        }
    }
    f
}

#[test]
fn any_split_of_the_input_gives_the_same_output() {
    let mut enc = loona_hpack::Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
    for stream in [1, 3] {
        let block = encode(&mut enc, &request("/tmp/s.sock"));
        input.extend(frame(HEADERS, END_HEADERS, stream, &block));
        input.extend(frame(DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]));
    }
    let (whole, _) = run_split(&input, input.len());
    for step in [1, 2, 7, 9, 10, 64] {
        assert_eq!(run_split(&input, step).0, whole, "step {step}");
    }
    let frames = after_preface(&whole);
    let kinds: Vec<u8> = frames.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [SETTINGS, HEADERS, DATA, HEADERS, DATA]);
    // SETTINGS and DATA pass byte for byte.
    assert_eq!(frames[0].payload, [0, 3, 0, 0, 0, 100]);
    assert_eq!(
        frames[2],
        Frame {
            kind: DATA,
            flags: END_STREAM,
            stream: 1,
            payload: vec![0; 5]
        }
    );
    // Both blocks (the second all dynamic-table references) read back, authority fixed.
    let expected = with_authority(&request(""), "localhost");
    assert_eq!(blocks(&frames), [expected.clone(), expected]);
}

#[test]
fn a_connection_that_starts_with_a_valid_authority_passes_unchanged() {
    let mut enc = loona_hpack::Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend(frame(SETTINGS, 0, 0, &[]));
    // Padded, in two frames: still byte for byte.
    let block = encode(&mut enc, &request("localhost:50051"));
    let mut payload = vec![2];
    payload.extend(&block[..10]);
    payload.extend([0, 0]);
    input.extend(frame(HEADERS, PADDED, 1, &payload));
    input.extend(frame(CONTINUATION, END_HEADERS, 1, &block[10..]));
    input.extend(frame(DATA, END_STREAM, 1, &[0; 5]));
    // Later requests are not even read, whatever they carry.
    let block = encode(&mut enc, &request("/run/s.sock"));
    input.extend(frame(HEADERS, END_HEADERS, 3, &block));
    input.extend(frame(HEADERS, END_HEADERS, 0, &[0x80]));
    for step in [1, 5, input.len()] {
        let (out, rw) = run_split(&input, step);
        assert_eq!(out, input);
        assert!(!rw.rewrites());
        assert!(rw.passes_everything());
    }
}

/// A first block that is not the layer's to fix reaches h2 as it came, for h2 to judge.
#[test]
fn a_first_block_with_problems_reaches_h2_unchanged() {
    let mut enc = loona_hpack::Encoder::new();
    let block = encode(&mut enc, &request("/s"));
    let firsts = [
        frame(HEADERS, END_HEADERS, 0, &block),
        frame(HEADERS, PADDED | END_HEADERS, 1, &[9, 1, 2]),
        [frame(HEADERS, 0, 1, &block), frame(DATA, 0, 1, &[1, 2])].concat(),
        [
            frame(HEADERS, 0, 1, &[]),
            frame(CONTINUATION, 0, 1, &[]).repeat(9),
        ]
        .concat(),
        frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2]),
        frame(HEADERS, END_HEADERS, 1, &[0x80]),
        frame(HEADERS, END_HEADERS, 1, &[]),
    ];
    for first in firsts {
        let input = [PREFACE, &first, &frame(DATA, 0, 1, b"next")].concat();
        let (out, rw) = run_split(&input, 4);
        assert_eq!(out, input);
        assert_eq!((rw.rewrites(), rw.refusal()), (false, None));
    }
}

#[test]
fn continuation_frames_are_joined() {
    let mut enc = loona_hpack::Encoder::new();
    let req = request("%2Ftmp%2Fs.sock");
    let block = encode(&mut enc, &req);
    let (a, rest) = block.split_at(10);
    let (b, c) = rest.split_at(20);
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_STREAM, 5, a));
    input.extend(frame(CONTINUATION, 0, 5, b));
    input.extend(frame(CONTINUATION, END_HEADERS, 5, c));
    let mut rw = Rewriter::new();
    let frames = after_preface(&run(&mut rw, &input));
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(
        (frames[0].kind, frames[0].flags),
        (HEADERS, END_STREAM | END_HEADERS)
    );
    assert_eq!(blocks(&frames), [with_authority(&req, "localhost")]);
    assert_eq!(rw.replaced(), 1);
}

#[test]
fn padding_is_dropped_and_priority_kept() {
    let mut enc = loona_hpack::Encoder::new();
    let req = request("/run/s.sock");
    let block = encode(&mut enc, &req);
    let priority = [0x80, 0, 0, 3, 200]; // exclusive, depends on stream 3, weight 201
    let mut payload = vec![4];
    payload.extend(priority);
    payload.extend(&block);
    payload.extend([0; 4]);
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 7, &payload));
    let frames = after_preface(&run(&mut Rewriter::new(), &input));
    assert_eq!(frames[0].flags, END_HEADERS | PRIORITY);
    assert_eq!(frames[0].payload[..5], priority);
    assert_eq!(blocks(&frames), [with_authority(&req, "localhost")]);
}

#[test]
fn a_block_larger_than_a_frame_is_split_into_continuations() {
    let mut enc = loona_hpack::Encoder::new();
    let req = request("/run/s.sock");
    // 40 KB of headers the client never indexes: as large re-encoded as sent.
    let mut block = encode(&mut enc, &req);
    let big = (b"x-a".to_vec(), vec![b'a'; 2000]);
    for _ in 0..20 {
        block.extend([0x10, 3]);
        block.extend(&big.0);
        loona_hpack::encoder::encode_integer_into(big.1.len(), 7, 0, &mut block).unwrap();
        block.extend(&big.1);
    }
    let mut input = PREFACE.to_vec();
    let max = MAX_FRAME_SIZE as usize;
    input.extend(frame(HEADERS, END_STREAM, 1, &block[..max]));
    input.extend(frame(CONTINUATION, 0, 1, &block[max..2 * max]));
    input.extend(frame(CONTINUATION, END_HEADERS, 1, &block[2 * max..]));
    let frames = after_preface(&run(&mut Rewriter::new(), &input));
    assert!(frames.len() >= 3, "{}", frames.len());
    assert_eq!(frames[0].flags, END_STREAM);
    assert!(
        frames[1..]
            .iter()
            .all(|f| f.kind == CONTINUATION && f.stream == 1)
    );
    assert_eq!(frames.last().unwrap().flags, END_HEADERS);
    let mut expected = with_authority(&req, "localhost");
    expected.extend(std::iter::repeat_n(big, 20));
    assert_eq!(blocks(&frames), [expected]);
}

#[test]
fn other_frames_stay_in_place_and_header_blocks_are_replaced_there() {
    let mut enc = loona_hpack::Encoder::new();
    let data = frame(DATA, 0, 1, &[7; 100]);
    let unknown = frame(0xfa, 0xff, 9, b"unknown type");
    let mut input = PREFACE.to_vec();
    input.extend(&data);
    let req = request("%2Fa%2Fs.sock");
    input.extend(frame(HEADERS, END_HEADERS, 1, &encode(&mut enc, &req)));
    input.extend(&unknown);
    input.extend(frame(HEADERS, END_HEADERS, 3, &encode(&mut enc, &req)));
    input.extend(&data);
    let expected = run(&mut Rewriter::new(), &input);
    let mut rw = Rewriter::new();
    let mut buf = input.clone();
    let mut pending = BytesMut::new();
    let kept = rw.rewrite_in_place(&mut buf, &mut pending);
    assert_eq!([&buf[..kept], &pending[..]].concat(), expected);
    // `localhost` is shorter than the socket path: each rewritten block fits where the
    // client's was, and nothing is left pending.
    assert!(pending.is_empty(), "{} bytes pending", pending.len());
    // Any split: a frame head or payload cut short waits in the rewriter.
    for step in [1, 5, 9, 10, 33, 100] {
        let (mut rw, mut got, mut pending) = (Rewriter::new(), Vec::new(), BytesMut::new());
        for piece in input.chunks(step) {
            let mut buf = piece.to_vec();
            let kept = rw.rewrite_in_place(&mut buf, &mut pending);
            got.extend(&buf[..kept]);
            got.extend(pending.split());
        }
        assert_eq!(got, expected, "step {step}");
    }
}

#[test]
fn not_http2_passes_unchanged_for_h2_to_refuse() {
    let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3);
    let (out, rw) = run_split(&input, 5);
    assert_eq!(out, input);
    assert!(rw.passes_everything());
}

#[test]
fn an_oversized_frame_reaches_h2_and_nothing_after_it() {
    let mut input = PREFACE.to_vec();
    let head = frame(HEADERS, END_HEADERS, 1, &[]);
    let mut big = head.clone();
    big[..3].copy_from_slice(&(MAX_FRAME_SIZE + 1).to_be_bytes()[1..]);
    input.extend(&big);
    input.extend(vec![0; 100]);
    let (out, rw) = run_split(&input, 1000);
    assert_eq!(out, input[..PREFACE.len() + 9]);
    assert!(rw.is_done());
}

/// Every malformed sequence on a rewritten connection: the output ends with the frames that
/// make h2 end it, nothing follows.
#[test]
fn bad_frames_end_a_rewritten_connection() {
    let mut enc = loona_hpack::Encoder::new();
    let first = frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &encode(&mut enc, &request("/s")),
    );
    let block = encode(&mut enc, &request("/s"));
    let big = vec![0x80 | 2; 16_000];
    let cases: Vec<(Vec<u8>, Refusal)> = vec![
        (frame(HEADERS, END_HEADERS, 0, &block), Refusal::StreamZero),
        (frame(HEADERS, PADDED, 1, &[]), Refusal::Truncated),
        (frame(HEADERS, PRIORITY, 1, &[0, 0]), Refusal::Truncated),
        (
            frame(HEADERS, PADDED | END_HEADERS, 1, &[9, 1, 2]),
            Refusal::TooMuchPadding,
        ),
        (
            [frame(HEADERS, 0, 1, &block), frame(DATA, 0, 1, &[])].concat(),
            Refusal::ExpectedContinuation,
        ),
        (
            frame(CONTINUATION, END_HEADERS, 1, &block),
            Refusal::UnexpectedContinuation,
        ),
        (
            [
                frame(HEADERS, 0, 1, &block[..3]),
                frame(CONTINUATION, END_HEADERS, 3, &block[3..]),
            ]
            .concat(),
            Refusal::ContinuationStreamMismatch,
        ),
        (
            [
                frame(HEADERS, 0, 1, &[]),
                frame(CONTINUATION, 0, 1, &[]).repeat(6),
            ]
            .concat(),
            Refusal::TooManyContinuations,
        ),
        (
            frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2]),
            Refusal::PushPromise,
        ),
        (
            frame(HEADERS, END_HEADERS, 1, &[0x80]),
            Refusal::Block(BlockError::Hpack(
                loona_hpack::decoder::DecoderError::HeaderIndexOutOfBounds,
            )),
        ),
        (
            // 16,000 copies of ":method GET": 16,000 × 42 bytes decoded, past the limit.
            [
                frame(HEADERS, 0, 1, &big),
                frame(CONTINUATION, END_HEADERS, 1, &big[..1000]),
            ]
            .concat(),
            Refusal::Block(BlockError::TooLarge),
        ),
    ];
    const { assert!(16_000 * 42 > ABUSE_LIST_SIZE) };
    for (bad, why) in cases {
        let mut input = PREFACE.to_vec();
        input.extend(frame(SETTINGS, 0, 0, &[]));
        input.extend(&first);
        input.extend(&bad);
        for step in [1, 3, input.len()] {
            let (mut out, mut rw) = run_split(&input, step);
            assert_eq!(rw.refusal(), Some(&why), "{bad:?}");
            assert!(rw.is_done());
            // Whatever comes next is not read.
            let mut more = BytesMut::new();
            rw.feed(&frame(DATA, 0, 1, b"late"), &mut more);
            assert!(more.is_empty());
            let frames = after_preface(&out);
            assert_eq!(frames[0].kind, SETTINGS);
            assert_eq!(
                blocks(&frames[1..2]),
                [with_authority(&request("/s"), "localhost")]
            );
            let last = frames.last().unwrap();
            if why.is_abuse() {
                let flood = &frames[frames.len() - 7..];
                assert_eq!(
                    (flood[0].kind, flood[0].flags, flood[0].stream),
                    (HEADERS, 0, 1)
                );
                assert!(
                    flood[1..]
                        .iter()
                        .all(|f| (f.kind, f.flags) == (CONTINUATION, 0))
                );
            } else {
                assert_eq!(
                    (last.kind, last.stream, last.payload.len()),
                    (HEADERS, 0, 0)
                );
            }
            out.clear();
        }
    }
}
