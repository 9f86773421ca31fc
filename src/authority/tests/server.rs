//! The layer in front of a real tonic server (the health service) on a Unix socket,
//! driven by a raw HTTP/2 client that sends exactly the bytes a test asks for — socket
//! paths as `:authority`, which no Rust HTTP/2 client can produce, and broken frames.
//! Each case also runs against the server without the layer, so a test that expects a
//! difference (or none) is checked against h2's own behaviour.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;

use super::*;
use crate::authority::{Connection, MAX_HEADER_LIST_SIZE};

const PROTOCOL_ERROR: u32 = 0x1;
const FRAME_SIZE_ERROR: u32 = 0x6;
const COMPRESSION_ERROR: u32 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const ABUSE: &str = "over h2's abuse limit";

/// A health server on a fresh socket, behind the layer or not.
async fn server(layer: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let incoming = UnixListenerStream::new(UnixListener::bind(&socket).unwrap());
    let (_reporter, health) = tonic_health::server::health_reporter();
    let router = tonic::transport::Server::builder()
        .max_frame_size(MAX_FRAME_SIZE)
        .http2_max_header_list_size(MAX_HEADER_LIST_SIZE)
        .add_service(health);
    if layer {
        tokio::spawn(router.serve_with_incoming(incoming.map(|c| c.map(Connection::new))));
    } else {
        tokio::spawn(router.serve_with_incoming(incoming));
    }
    (dir, socket)
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A response: its `:status`, `grpc-status` and message bytes.
    Response {
        status: String,
        grpc_status: String,
        data: Vec<u8>,
    },
    /// RST_STREAM with this code.
    Reset(u32),
    /// GOAWAY with this code.
    GoAway(u32),
    /// The connection closed without either.
    Closed,
}

/// The health service's answer to `Check("")`: SERVING.
fn serving() -> Outcome {
    Outcome::Response {
        status: "200".into(),
        grpc_status: "0".into(),
        data: vec![0, 0, 0, 0, 2, 0x08, 0x01],
    }
}

struct Client {
    stream: UnixStream,
    decoder: loona_hpack::Decoder<'static>,
    encoder: loona_hpack::Encoder<'static>,
}

impl Client {
    async fn connect(socket: &PathBuf) -> Client {
        let mut stream = UnixStream::connect(socket).await.unwrap();
        stream.write_all(PREFACE).await.unwrap();
        stream.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
        Client {
            stream,
            decoder: loona_hpack::Decoder::new(),
            encoder: loona_hpack::Encoder::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        // The server may already have closed: what it said is read afterwards.
        let _ = self.stream.write_all(bytes).await;
    }

    /// A health check on `stream` with these header fields.
    async fn check(&mut self, stream: u32, fields: &Fields) -> Outcome {
        let block = encode(&mut self.encoder, fields);
        let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME_SIZE as usize).collect();
        let mut bytes = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            let end = if i + 1 == chunks.len() {
                END_HEADERS
            } else {
                0
            };
            bytes.extend(frame(kind, end, stream, chunk));
        }
        bytes.extend(frame(DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]));
        self.send(&bytes).await;
        self.outcome(stream).await
    }

    async fn next_frame(&mut self) -> Option<Frame> {
        let mut head = [0; 9];
        self.stream.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]),
            payload,
        })
    }

    /// Reads until `stream` ends or the connection does.
    async fn outcome(&mut self, stream: u32) -> Outcome {
        tokio::time::timeout(Duration::from_secs(20), self.read_outcome(stream))
            .await
            .expect("the server answered within 20 s")
    }

    async fn read_outcome(&mut self, stream: u32) -> Outcome {
        let (mut status, mut grpc_status, mut data) = (String::new(), String::new(), Vec::new());
        let mut block = Vec::new();
        loop {
            let Some(f) = self.next_frame().await else {
                return Outcome::Closed;
            };
            let code = |p: &[u8], at: usize| u32::from_be_bytes(p[at..at + 4].try_into().unwrap());
            match f.kind {
                GOAWAY => return Outcome::GoAway(code(&f.payload, 4)),
                RST_STREAM if f.stream == stream => return Outcome::Reset(code(&f.payload, 0)),
                SETTINGS if f.flags & 1 == 0 => self.send(&frame(SETTINGS, 1, 0, &[])).await,
                DATA if f.stream == stream => data.extend(&f.payload),
                HEADERS | CONTINUATION => {
                    block.extend(&f.payload);
                    if f.flags & END_HEADERS != 0 {
                        for (n, v) in self.decoder.decode(&block).unwrap() {
                            let v = String::from_utf8(v).unwrap();
                            match &n[..] {
                                b":status" => status = v,
                                b"grpc-status" => grpc_status = v,
                                _ => {}
                            }
                        }
                        block.clear();
                    }
                }
                _ => {}
            }
            if f.stream == stream && f.flags & END_STREAM != 0 && matches!(f.kind, HEADERS | DATA) {
                return Outcome::Response {
                    status,
                    grpc_status,
                    data,
                };
            }
        }
    }
}

/// Health checks with these authorities on one connection (streams 1, 3, …).
async fn checks(layer: bool, authorities: &[&str]) -> Vec<Outcome> {
    let (_dir, socket) = server(layer).await;
    let mut client = Client::connect(&socket).await;
    let mut out = Vec::new();
    for (i, a) in authorities.iter().enumerate() {
        out.push(client.check(2 * i as u32 + 1, &request(a)).await);
    }
    out
}

const SOCKET_PATHS: [&str; 3] = [
    // grpcurl -unix, grpc-java
    "/run/user/1000/skillmeatd/skillmeatd.sock",
    // grpc C-core (Python's grpcio)
    "%2Frun%2Fuser%2F1000%2Fskillmeatd%2Fskillmeatd.sock",
    "",
];

#[tokio::test]
async fn h2_alone_resets_requests_with_a_socket_path_authority() {
    let mut authorities = SOCKET_PATHS.to_vec();
    authorities.push("localhost");
    let got = checks(false, &authorities).await;
    let reset = Outcome::Reset(PROTOCOL_ERROR);
    assert_eq!(got, [reset.clone(), reset.clone(), reset, serving()]);
}

#[tokio::test]
async fn the_layer_lets_them_through() {
    let mut authorities = SOCKET_PATHS.to_vec();
    authorities.push("localhost");
    // Again: the client now refers to its dynamic table for all of them.
    authorities.extend(SOCKET_PATHS);
    let got = checks(true, &authorities).await;
    assert_eq!(got, vec![serving(); authorities.len()]);
}

/// A request fares exactly as without the layer — the same answer, the same stream or
/// connection error, the same state of the connection afterwards — on a connection passed
/// through (its first request named a valid authority) and on a rewritten one (its first
/// request named the socket path). The one difference: a header list past h2's abuse limit
/// ends a rewritten connection with ENHANCE_YOUR_CALM where h2, reading the client's own
/// frames, gives up earlier with COMPRESSION_ERROR.
#[tokio::test]
async fn everything_else_is_judged_by_h2_as_before() {
    let ok = request("localhost");
    let edit = |f: &dyn Fn(&mut Fields)| {
        let mut r = ok.clone();
        f(&mut r);
        r
    };
    let cases: Vec<(&str, Fields)> = vec![
        ("valid", ok.clone()),
        (
            "uppercase name",
            edit(&|r| r.push((b"X-Upper".to_vec(), b"1".to_vec()))),
        ),
        (
            "connection header",
            edit(&|r| r.push((b"connection".to_vec(), b"close".to_vec()))),
        ),
        (
            "te other than trailers",
            edit(&|r| r[4].1 = b"gzip".to_vec()),
        ),
        ("no method", edit(&|r| r.retain(|(n, _)| n != b":method"))),
        (
            "pseudo after regular",
            edit(&|r| r.push((b":path".to_vec(), b"/x".to_vec()))),
        ),
        (
            "unknown pseudo",
            edit(&|r| r.insert(0, (b":foo".to_vec(), b"x".to_vec()))),
        ),
        (
            "authority not UTF-8",
            edit(&|r| r[2].1 = b"\xff/x".to_vec()),
        ),
        (
            "invalid value",
            edit(&|r| r.push((b"x-v".to_vec(), b"a\nb".to_vec()))),
        ),
        (
            "over SETTINGS_MAX_HEADER_LIST_SIZE",
            edit(&|r| r.push((b"x-big".to_vec(), vec![b'b'; 20_000]))),
        ),
        (
            ABUSE,
            edit(&|r| {
                r.extend((0..5).map(|i| (format!("x-{i}").into_bytes(), vec![b'b'; 14_000])))
            }),
        ),
    ];
    for (what, fields) in &cases {
        let plain = session(false, "localhost", fields).await;
        let passed = session(true, "localhost", fields).await;
        assert_eq!(passed, plain, "{what}: passed through vs without the layer");
        let rewritten = session(true, "/run/s.sock", fields).await;
        if *what == ABUSE {
            assert_eq!(plain[1], Outcome::GoAway(COMPRESSION_ERROR), "{what}");
            assert_eq!(rewritten[1], Outcome::GoAway(ENHANCE_YOUR_CALM), "{what}");
        } else {
            assert_eq!(rewritten, plain, "{what}: rewritten vs without the layer");
        }
    }
}

/// A valid request, then `case`, then a valid request again while the connection lasts, all
/// with `authority` unless the case sets its own.
async fn session(layer: bool, authority: &str, case: &Fields) -> Vec<Outcome> {
    let (_dir, socket) = server(layer).await;
    let mut client = Client::connect(&socket).await;
    let mut outcomes = Vec::new();
    let ok = request(authority);
    let names_localhost = case
        .iter()
        .any(|(n, v)| n == b":authority" && v == b"localhost");
    let case = if names_localhost {
        with_authority(case, authority)
    } else {
        case.clone()
    };
    for (stream, fields) in [(1, &ok), (3, &case), (5, &ok)] {
        let outcome = client.check(stream, fields).await;
        let over = matches!(outcome, Outcome::GoAway(_) | Outcome::Closed);
        outcomes.push(outcome);
        if over {
            break;
        }
    }
    outcomes
}

#[tokio::test]
async fn bad_hpack_ends_the_connection_with_goaway() {
    let (_dir, socket) = server(true).await;
    let mut client = Client::connect(&socket).await;
    assert_eq!(client.check(1, &request("/s")).await, serving());
    client.send(&frame(HEADERS, END_HEADERS, 3, &[0x80])).await;
    assert_eq!(client.outcome(3).await, Outcome::GoAway(PROTOCOL_ERROR));
    assert_eq!(client.next_frame().await, None);
    // The server itself is fine.
    assert_eq!(checks(true, &["/s"]).await, [serving()]);
}

#[tokio::test]
async fn an_oversized_frame_gets_h2s_frame_size_error() {
    for layer in [false, true] {
        let (_dir, socket) = server(layer).await;
        let mut client = Client::connect(&socket).await;
        let block = vec![0; MAX_FRAME_SIZE as usize + 1];
        client.send(&frame(HEADERS, END_HEADERS, 1, &block)).await;
        assert_eq!(
            client.outcome(1).await,
            Outcome::GoAway(FRAME_SIZE_ERROR),
            "layer {layer}"
        );
    }
}

#[tokio::test]
async fn a_continuation_flood_ends_the_connection() {
    for layer in [false, true] {
        let (_dir, socket) = server(layer).await;
        let mut client = Client::connect(&socket).await;
        let mut bytes = frame(HEADERS, 0, 1, &[]);
        bytes.extend(frame(CONTINUATION, 0, 1, &[]).repeat(50));
        client.send(&bytes).await;
        assert_eq!(
            client.outcome(1).await,
            Outcome::GoAway(ENHANCE_YOUR_CALM),
            "layer {layer}"
        );
    }
}

/// Padding, priority, CONTINUATION frames and a table size update, as a client may send
/// them, all with a socket path: served.
#[tokio::test]
async fn every_header_block_shape_is_served() {
    let (_dir, socket) = server(true).await;
    let mut client = Client::connect(&socket).await;
    // The client shrinks its table to 100 bytes: its next block must say so first.
    client.encoder.set_max_table_size(100);
    let mut size_update = Vec::new();
    loona_hpack::encoder::encode_integer_into(100, 5, 0x20, &mut size_update).unwrap();
    for stream in [1u32, 3] {
        let mut block = if stream == 1 {
            size_update.clone()
        } else {
            Vec::new()
        };
        block.extend(encode(&mut client.encoder, &request("%2Ftmp%2Fs.sock")));
        let (a, b) = block.split_at(block.len() / 2);
        let mut payload = vec![3]; // pad length
        payload.extend([0, 0, 0, 0, 15]); // depends on stream 0, weight 16
        payload.extend(a);
        payload.extend([0; 3]);
        let mut bytes = frame(HEADERS, 0x8 | 0x20, stream, &payload);
        bytes.extend(frame(CONTINUATION, END_HEADERS, stream, b));
        bytes.extend(frame(DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]));
        client.send(&bytes).await;
        assert_eq!(client.outcome(stream).await, serving(), "stream {stream}");
    }
}

/// h2 resets a stream whose priority names the stream itself without reading its header
/// block. The layer reads it (the client's table moves on) but hands h2 a block that would
/// not change h2's table, so later requests, which refer to what that block indexed, are
/// still read right. (Without the layer, h2's table would miss those entries.)
#[tokio::test]
async fn a_stream_depending_on_itself_is_reset_and_the_tables_stay_in_step() {
    let (_dir, socket) = server(true).await;
    let mut client = Client::connect(&socket).await;
    let mut ok = request("/run/s.sock");
    assert_eq!(client.check(1, &ok).await, serving());
    ok.push((b"x-new".to_vec(), b"1".to_vec()));
    let block = encode(&mut client.encoder, &ok);
    let mut payload = vec![0, 0, 0, 3, 15]; // depends on stream 3 itself
    payload.extend(&block);
    let mut bytes = frame(HEADERS, END_HEADERS | PRIORITY, 3, &payload);
    bytes.extend(frame(DATA, END_STREAM, 3, &[0, 0, 0, 0, 0]));
    client.send(&bytes).await;
    assert_eq!(client.outcome(3).await, Outcome::Reset(PROTOCOL_ERROR));
    // `x-new: 1` is now a reference to the client's table.
    assert_eq!(client.check(5, &ok).await, serving());
    assert_eq!(client.check(7, &ok).await, serving());
}

/// A 60 KB request (within the initial flow-control window) in 16 KiB DATA frames, read
/// partly straight into h2's buffer: the service gets every byte (it answers NOT_FOUND for
/// the 60 KB service name it read).
#[tokio::test]
async fn large_messages_pass_through() {
    let name = vec![b's'; 60_000];
    let mut message = vec![0x0a]; // field 1, length-delimited
    let mut n = name.len();
    while n >= 0x80 {
        message.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    message.push(n as u8);
    message.extend(&name);
    let mut body = vec![0];
    body.extend((message.len() as u32).to_be_bytes());
    body.extend(&message);
    for layer in [false, true] {
        let (_dir, socket) = server(layer).await;
        let mut client = Client::connect(&socket).await;
        let authority = if layer { "/run/s.sock" } else { "localhost" };
        let block = encode(&mut client.encoder, &request(authority));
        let mut bytes = frame(HEADERS, END_HEADERS, 1, &block);
        let chunks: Vec<&[u8]> = body.chunks(MAX_FRAME_SIZE as usize).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let end = if i + 1 == chunks.len() { END_STREAM } else { 0 };
            bytes.extend(frame(DATA, end, 1, chunk));
        }
        client.send(&bytes).await;
        let not_found = Outcome::Response {
            status: "200".into(),
            grpc_status: "5".into(),
            data: vec![],
        };
        assert_eq!(client.outcome(1).await, not_found, "layer {layer}");
    }
}
