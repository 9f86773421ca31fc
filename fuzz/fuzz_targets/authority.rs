//! Client bytes → the authority layer's rewriter (`skillmeatd::authority::Rewriter`): it
//! never panics and gives the same output however the bytes are split into reads. A
//! connection it does not rewrite reaches h2 byte for byte; on a rewritten one (the input
//! may start with a request naming the socket path), every header block h2 gets reads with
//! an empty HPACK table (nothing indexed) and carries no `:authority` h2 would refuse.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use skillmeatd::authority::Rewriter;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PRIORITY: u8 = 0x20;

fuzz_target!(|input: (u8, bool, Vec<u8>)| {
    let (step, socket_path_first, frames) = input;
    let mut stream = PREFACE.to_vec();
    if socket_path_first {
        // A grpcio-like first request (indexed, so later blocks may refer to it).
        let block = loona_hpack::Encoder::new().encode([
            (&b":method"[..], &b"POST"[..]),
            (b":authority", b"%2Frun%2Fs.sock"),
            (b":path", b"/grpc.health.v1.Health/Check"),
        ]);
        let len = (block.len() as u32).to_be_bytes();
        stream.extend([len[1], len[2], len[3], HEADERS, END_HEADERS, 0, 0, 0, 1]);
        stream.extend(block);
    }
    stream.extend(&frames);

    let mut whole = Rewriter::new();
    let mut out = BytesMut::new();
    whole.feed(&stream, &mut out);

    let mut split = Rewriter::new();
    let mut out_split = BytesMut::new();
    for piece in stream.chunks(usize::from(step).max(1)) {
        split.feed(piece, &mut out_split);
    }
    assert_eq!(out, out_split, "output depends on how the input was split");
    assert_eq!(whole.refusal(), split.refusal());
    assert_eq!(whole.rewrites(), split.rewrites());
    assert!(whole.rewrites() || !socket_path_first);

    if whole.rewrites() {
        assert_eq!(&out[..PREFACE.len()], PREFACE);
        check_blocks(&out[PREFACE.len()..]);
    } else {
        assert!(stream.starts_with(&out), "a connection not rewritten was changed");
    }
});

/// Every complete header block in `out` (whole frames only; a forwarded frame may be cut
/// short where the input ended).
fn check_blocks(mut out: &[u8]) {
    let mut block = Vec::new();
    while out.len() >= 9 {
        let len = u32::from_be_bytes([0, out[0], out[1], out[2]]) as usize;
        let (kind, flags) = (out[3], out[4]);
        let Some(payload) = out.get(9..9 + len) else {
            return;
        };
        out = &out[9 + len..];
        if kind != HEADERS && kind != CONTINUATION {
            continue;
        }
        let fragment = if kind == HEADERS && flags & PRIORITY != 0 {
            &payload[5..]
        } else {
            payload
        };
        block.extend_from_slice(fragment);
        if flags & END_HEADERS == 0 {
            continue;
        }
        let fields = loona_hpack::Decoder::new()
            .decode(&block)
            .expect("a rewritten block refers to no table entry");
        for (name, value) in fields {
            if name == b":authority" {
                let refused = std::str::from_utf8(&value).is_ok()
                    && http::uri::Authority::try_from(&value[..]).is_err();
                assert!(!refused, "h2 would refuse :authority {value:?}");
            }
        }
        block.clear();
    }
}
