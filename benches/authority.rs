//! What the authority layer costs: the same tonic server (the health service) on a Unix
//! socket with and without `skillmeatd::authority::Connection` in front. Not run in CI:
//!
//! ```sh
//! cargo bench --bench authority                 # about a minute once built
//! cargo bench --bench authority -- instructions # counted, not timed: see instructions.rs
//! ```
//!
//! Each server runs alone on its own thread (a current-thread runtime), so the bench reads
//! the server's CPU time (`CLOCK_THREAD_CPUTIME_ID` of that thread) for each side: CPU per
//! call is what the layer costs the daemon and what limits throughput on a busy machine,
//! and unlike wall-clock figures it hardly moves with the machine's load. Wall-clock
//! latency and throughput are printed as well.
//!
//! Two clients, in short alternating rounds so every side shares the machine's noise; each
//! ratio is the median of the rounds' ratios (each round's sides ran back to back), printed
//! with the middle half of those ratios (25th–75th percentile) to show how steady it was:
//! - the daemon's own tonic client (`skillmeatd::connect`, authority `skillmeatd.invalid`:
//!   valid, so the layer passes the connection through): unary latency (sequential `Check`
//!   calls, p50 and p99), unary throughput (64 concurrent tasks on one connection) and
//!   inbound bulk (1 MiB requests — a 1 MiB service name, answered NOT_FOUND);
//! - a raw HTTP/2 client sending header blocks as grpcio does (every field indexed after
//!   the first request): with authority `localhost` to the plain server, and to the layer
//!   both with `localhost` (passed through) and with the socket path (every block decoded
//!   and re-encoded), latency and throughput (64 streams in flight).
//!
//! A health check is the cheapest RPC there is, so the layer's per-request share is at its
//! largest here.

use std::os::unix::thread::JoinHandleExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use skillmeatd::authority::{self, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const ROUNDS: usize = 11;
/// The raw client's rounds are shorter, so it has more of them.
const RAW_ROUNDS: usize = 31;
const LATENCY_CALLS: usize = 2_000;
const THROUGHPUT_CALLS: usize = 10_000;
const RAW_THROUGHPUT_CALLS: usize = 5_000;
const CONCURRENCY: usize = 64;
const BULK_CALLS: usize = 100;
const BULK_BYTES: usize = 1 << 20;

#[path = "authority/instructions.rs"]
mod instructions;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "child") {
        instructions::child(&args[i + 1..]);
        return;
    }
    if args.iter().any(|a| a == "instructions") {
        instructions::bench();
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// One side's figures, a value per round.
#[derive(Default)]
struct Samples {
    p50_us: Vec<f64>,
    p99_us: Vec<f64>,
    rpc_per_s: Vec<f64>,
    mib_per_s: Vec<f64>,
    /// Server CPU per call, calls one at a time (the latency phase).
    cpu_serial_us: Vec<f64>,
    /// Server CPU per call, [`CONCURRENCY`] in flight (the throughput phase).
    cpu_flight_us: Vec<f64>,
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let mut clients = Vec::new();
    let mut sockets = Vec::new();
    let mut servers = Vec::new();
    for layer in [false, true] {
        let socket = dir.path().join(format!("layer-{layer}.sock"));
        servers.push(Server::start(&socket, layer));
        clients.push(HealthClient::new(
            skillmeatd::connect::channel(&socket).await.unwrap(),
        ));
        sockets.push(socket);
    }
    tonic_client(&clients, &servers).await;
    raw_client(&sockets, &servers).await;
}

async fn tonic_client(clients: &[HealthClient<Channel>], servers: &[Server]) {
    let mut samples = [Samples::default(), Samples::default()];
    // Warm-up, then rounds alternating which side goes first.
    for client in clients {
        latency(client, 500).await;
    }
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let client = &clients[side];
            let s = &mut samples[side];
            let cpu = servers[side].cpu();
            let mut lat = latency(client, LATENCY_CALLS).await;
            s.cpu_serial_us
                .push(per_call(servers[side].cpu() - cpu, LATENCY_CALLS));
            lat.sort();
            s.p50_us.push(micros(lat[lat.len() / 2]));
            s.p99_us.push(micros(lat[lat.len() * 99 / 100]));
            let cpu = servers[side].cpu();
            let (calls, rate) = throughput(client).await;
            s.cpu_flight_us
                .push(per_call(servers[side].cpu() - cpu, calls));
            s.rpc_per_s.push(rate);
            s.mib_per_s.push(bulk(client).await);
        }
    }
    let [plain, layered] = samples;
    println!("tonic client, {ROUNDS} rounds: medians; ratio = with layer / without");
    println!("| what | without layer | with layer | ratio | middle half |");
    println!("|---|---|---|---|---|");
    row("unary latency p50", &plain.p50_us, &layered.p50_us, "µs");
    row("unary latency p99", &plain.p99_us, &layered.p99_us, "µs");
    row(
        &format!("unary throughput ({CONCURRENCY} in flight)"),
        &plain.rpc_per_s,
        &layered.rpc_per_s,
        "RPC/s",
    );
    row(
        "server CPU per call, one at a time",
        &plain.cpu_serial_us,
        &layered.cpu_serial_us,
        "µs",
    );
    row(
        &format!("server CPU per call, {CONCURRENCY} in flight"),
        &plain.cpu_flight_us,
        &layered.cpu_flight_us,
        "µs",
    );
    row(
        "1 MiB requests",
        &plain.mib_per_s,
        &layered.mib_per_s,
        "MiB/s",
    );
}

/// The health service on a socket, with or without the layer, with the daemon's limits,
/// alone on its own thread, whose CPU clock the bench reads.
struct Server {
    clock: libc::clockid_t,
    _thread: JoinHandle<()>,
}

impl Server {
    fn start(socket: &Path, layer: bool) -> Server {
        let socket = socket.to_path_buf();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let incoming = UnixListenerStream::new(UnixListener::bind(&socket).unwrap());
                ready_tx.send(()).unwrap();
                let (_reporter, health) = tonic_health::server::health_reporter();
                let router = tonic::transport::Server::builder()
                    .max_frame_size(authority::MAX_FRAME_SIZE)
                    .http2_max_header_list_size(authority::MAX_HEADER_LIST_SIZE)
                    .add_service(health);
                if layer {
                    router
                        .serve_with_incoming(incoming.map(|c| c.map(Connection::new)))
                        .await
                } else {
                    router.serve_with_incoming(incoming).await
                }
                .unwrap();
            });
        });
        ready_rx.recv().unwrap();
        let mut clock = 0;
        let rc = unsafe { libc::pthread_getcpuclockid(thread.as_pthread_t(), &mut clock) };
        assert_eq!(rc, 0, "pthread_getcpuclockid");
        Server {
            clock,
            _thread: thread,
        }
    }

    /// CPU time the server's thread has used so far.
    fn cpu(&self) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        assert_eq!(unsafe { libc::clock_gettime(self.clock, &mut ts) }, 0);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

fn per_call(cpu: Duration, calls: usize) -> f64 {
    micros(cpu) / calls as f64
}

async fn latency(client: &HealthClient<Channel>, calls: usize) -> Vec<Duration> {
    let mut client = client.clone();
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        client.check(HealthCheckRequest::default()).await.unwrap();
        out.push(t.elapsed());
    }
    out
}

/// Returns how many calls were made, and how many per second.
async fn throughput(client: &HealthClient<Channel>) -> (usize, f64) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                for _ in 0..THROUGHPUT_CALLS / CONCURRENCY {
                    client.check(HealthCheckRequest::default()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let calls = THROUGHPUT_CALLS / CONCURRENCY * CONCURRENCY;
    (calls, calls as f64 / start.elapsed().as_secs_f64())
}

async fn bulk(client: &HealthClient<Channel>) -> f64 {
    let mut client = client.clone();
    let request = HealthCheckRequest {
        service: "s".repeat(BULK_BYTES),
    };
    let start = Instant::now();
    for _ in 0..BULK_CALLS {
        let status = client.check(request.clone()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
    }
    (BULK_CALLS * BULK_BYTES) as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

fn row(what: &str, a: &[f64], b: &[f64], unit: &str) {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| b / a).collect();
    let (a, b) = (median(a), median(b));
    println!(
        "| {what} | {a:.1} {unit} | {b:.1} {unit} | {:.3} | {:.3}–{:.3} |",
        median(&ratios),
        percentile(&ratios, 25),
        percentile(&ratios, 75),
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50)
}

fn percentile(v: &[f64], p: usize) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) * p / 100]
}

/// The raw client's three sides: plain server with `localhost`, layer with `localhost`,
/// layer with the socket path.
async fn raw_client(sockets: &[PathBuf], servers: &[Server]) {
    let path = sockets[1].to_str().unwrap().to_string();
    let sides = [
        (&sockets[0], "localhost"),
        (&sockets[1], "localhost"),
        (&sockets[1], path.as_str()),
    ];
    let mut conns = Vec::new();
    for (socket, authority) in sides {
        let mut c = RawClient::connect(socket, authority).await;
        for _ in 0..500 {
            c.call().await;
        }
        conns.push(c);
    }
    // The server each side talks to.
    let server = [&servers[0], &servers[1], &servers[1]];
    let mut samples: [Samples; 3] = Default::default();
    for round in 0..RAW_ROUNDS {
        for i in 0..3 {
            let side = (i + round) % 3;
            let c = &mut conns[side];
            let s = &mut samples[side];
            let mut lat = Vec::with_capacity(LATENCY_CALLS);
            let cpu = server[side].cpu();
            for _ in 0..LATENCY_CALLS {
                let t = Instant::now();
                c.call().await;
                lat.push(t.elapsed());
            }
            s.cpu_serial_us
                .push(per_call(server[side].cpu() - cpu, LATENCY_CALLS));
            lat.sort();
            s.p50_us.push(micros(lat[lat.len() / 2]));
            s.p99_us.push(micros(lat[lat.len() * 99 / 100]));
            let cpu = server[side].cpu();
            s.rpc_per_s
                .push(c.pipelined(RAW_THROUGHPUT_CALLS, CONCURRENCY).await);
            s.cpu_flight_us
                .push(per_call(server[side].cpu() - cpu, RAW_THROUGHPUT_CALLS));
        }
    }
    println!();
    println!(
        "raw client sending grpcio's header blocks, {RAW_ROUNDS} rounds: medians; ratio = with layer / plain server"
    );
    println!("| what | plain server | with layer | ratio | middle half |");
    println!("|---|---|---|---|---|");
    let plain = &samples[0];
    for (side, how) in [(1, "passed through"), (2, "rewritten")] {
        let s = &samples[side];
        row(
            &format!("latency p50, {how}"),
            &plain.p50_us,
            &s.p50_us,
            "µs",
        );
        row(
            &format!("latency p99, {how}"),
            &plain.p99_us,
            &s.p99_us,
            "µs",
        );
        row(
            &format!("throughput ({CONCURRENCY} in flight), {how}"),
            &plain.rpc_per_s,
            &s.rpc_per_s,
            "RPC/s",
        );
        row(
            &format!("server CPU per call, one at a time, {how}"),
            &plain.cpu_serial_us,
            &s.cpu_serial_us,
            "µs",
        );
        row(
            &format!("server CPU per call, {CONCURRENCY} in flight, {how}"),
            &plain.cpu_flight_us,
            &s.cpu_flight_us,
            "µs",
        );
    }
}

/// The header blocks grpcio 1.85.1 (grpc C-core) sends on one channel, as read off its
/// socket: the first request sends every field as a literal with incremental indexing
/// (its name a literal too), but `:method: POST` and `:scheme: http`, references to the
/// static table; every later request refers to those entries, one byte a field.
fn grpcio_blocks(fields: &[(&[u8], &[u8])]) -> (Vec<u8>, Vec<u8>) {
    const STATIC: [(&[u8], &[u8], u8); 2] = [(b":method", b"POST", 3), (b":scheme", b"http", 6)];
    let mut first = Vec::new();
    // The client's dynamic table, newest first.
    let mut table: Vec<&[u8]> = Vec::new();
    for &(name, value) in fields {
        if let Some((.., index)) = STATIC.iter().find(|(n, v, _)| (*n, *v) == (name, value)) {
            first.push(0x80 | index);
            continue;
        }
        first.push(0x40);
        for s in [name, value] {
            loona_hpack::encoder::encode_integer_into(s.len(), 7, 0, &mut first).unwrap();
            first.extend(s);
        }
        table.insert(0, name);
    }
    let steady = fields
        .iter()
        .map(
            |&(name, value)| match STATIC.iter().find(|(n, v, _)| (*n, *v) == (name, value)) {
                Some((.., index)) => 0x80 | index,
                None => 0x80 | (62 + table.iter().position(|n| *n == name).unwrap()) as u8,
            },
        )
        .collect();
    (first, steady)
}

/// A minimal HTTP/2 client: health checks with header blocks as grpcio sends them.
struct RawClient {
    stream: UnixStream,
    first: Vec<u8>,
    steady: Vec<u8>,
    next_id: u32,
    buf: Vec<u8>,
}

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    out.extend([len[1], len[2], len[3], kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
}

impl RawClient {
    async fn connect(socket: &Path, authority: &str) -> RawClient {
        let mut stream = UnixStream::connect(socket).await.unwrap();
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        frame(&mut hello, 0x4, 0, 0, &[]);
        // The whole connection window at once: responses never wait for WINDOW_UPDATEs.
        frame(
            &mut hello,
            0x8,
            0,
            0,
            &(i32::MAX as u32 - 65_535).to_be_bytes(),
        );
        stream.write_all(&hello).await.unwrap();
        let fields: [(&[u8], &[u8]); 8] = [
            (b":path", b"/grpc.health.v1.Health/Check"),
            (b":authority", authority.as_bytes()),
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"grpc-accept-encoding", b"identity, deflate, gzip"),
            (
                b"user-agent",
                b"grpc-python/1.85.1 grpc-c/58.0.0 (linux; chttp2)",
            ),
        ];
        let (first, steady) = grpcio_blocks(&fields);
        RawClient {
            stream,
            first,
            steady,
            next_id: 1,
            buf: Vec::new(),
        }
    }

    fn request(&mut self, out: &mut Vec<u8>) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let block = if id == 1 { &self.first } else { &self.steady };
        frame(out, HEADERS, END_HEADERS, id, block);
        frame(out, DATA, END_STREAM, id, &[0, 0, 0, 0, 0]);
        id
    }

    /// One health check, waited for.
    async fn call(&mut self) {
        let mut out = Vec::new();
        let id = self.request(&mut out);
        self.stream.write_all(&out).await.unwrap();
        while self.finished().await != id {}
    }

    /// `calls` health checks, `in_flight` at a time; returns RPCs per second.
    async fn pipelined(&mut self, calls: usize, in_flight: usize) -> f64 {
        let start = Instant::now();
        let (mut sent, mut done) = (0, 0);
        while done < calls {
            let mut out = Vec::new();
            while sent < calls && sent - done < in_flight {
                self.request(&mut out);
                sent += 1;
            }
            if !out.is_empty() {
                self.stream.write_all(&out).await.unwrap();
            }
            self.finished().await;
            done += 1;
        }
        calls as f64 / start.elapsed().as_secs_f64()
    }

    /// Reads frames until a stream ends; returns its id.
    async fn finished(&mut self) -> u32 {
        loop {
            while self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() < 9 + len {
                    break;
                }
                let (kind, flags) = (self.buf[3], self.buf[4]);
                let id = u32::from_be_bytes(self.buf[5..9].try_into().unwrap());
                self.buf.drain(..9 + len);
                match kind {
                    0x3 | 0x7 => panic!("the server reset stream {id} or the connection"),
                    0x4 if flags & 1 == 0 => {
                        let mut ack = Vec::new();
                        frame(&mut ack, 0x4, 1, 0, &[]);
                        self.stream.write_all(&ack).await.unwrap();
                    }
                    HEADERS if flags & END_STREAM != 0 => return id,
                    _ => {}
                }
            }
            let mut chunk = [0; 16 * 1024];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
