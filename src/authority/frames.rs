//! The client-to-server byte stream of one HTTP/2 connection, rewritten: the preface and
//! every frame pass unchanged, except header blocks (HEADERS + CONTINUATION), which are
//! collected, transcoded by [`super::block`] and emitted again as HEADERS + CONTINUATION
//! frames no larger than the server's SETTINGS_MAX_FRAME_SIZE.
//!
//! The connection's first header block decides whether that is needed. A gRPC channel
//! sends one authority on all its calls: when the first block's `:authority` is one h2
//! accepts (or the block is one this layer cannot read), the block goes to h2 exactly as
//! it came and so does the rest of the connection, unread — h2's HPACK table stays the
//! client's, and h2 judges every byte as if the layer were not there. Only a connection
//! whose first request h2 would refuse is rewritten, every block of it, from that block on.
//!
//! [`Rewriter`] is plain data in, bytes out — no I/O — so it is unit-tested and fuzzed
//! directly; [`super::Connection`] drives it from the socket.
//!
//! A rewritten connection the rewriter cannot pass on faithfully (HPACK it cannot decode,
//! frames out of order, a header list past h2's abuse limit, …) is refused the way h2 would refuse
//! it: the rewriter hands h2 frames h2 treats as a connection error — a HEADERS frame on
//! stream 0, or a CONTINUATION flood where h2 would speak of abuse — so h2 sends GOAWAY
//! (PROTOCOL_ERROR or ENHANCE_YOUR_CALM) and closes, and then reports the end of the
//! stream. Frames whose problems h2 detects on its own (a frame larger than the
//! limit, bad SETTINGS, a bad preface) reach h2 unchanged.

use bytes::{BufMut, BytesMut};

use super::MAX_FRAME_SIZE;
use super::block::{BlockCodec, BlockError};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEAD_LEN: usize = 9;

const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// How many CONTINUATION frames without END_HEADERS h2 tolerates in one block before it
/// calls it a flood (its `calc_max_continuation_frames` for a 16 KiB header list and
/// 16 KiB frames). It also bounds the block this layer buffers: at most
/// (`MAX_CONTINUATIONS` + 2) frames.
const MAX_CONTINUATIONS: usize = 5;

/// A HEADERS frame on stream 0 (END_HEADERS, empty): h2 answers it with
/// GOAWAY(PROTOCOL_ERROR), RFC 9113 §6.2.
const PROTOCOL_ERROR_FRAME: [u8; HEAD_LEN] = [0, 0, 0, HEADERS, END_HEADERS, 0, 0, 0, 0];
/// An empty HEADERS frame without END_HEADERS (stream 1), then one CONTINUATION more than
/// h2 tolerates: h2 answers GOAWAY(ENHANCE_YOUR_CALM), as it does to a flood or a header
/// list past its abuse limit.
const CALM_HEAD: [u8; HEAD_LEN] = [0, 0, 0, HEADERS, 0, 0, 0, 0, 1];
const CALM_CONTINUATION: [u8; HEAD_LEN] = [0, 0, 0, CONTINUATION, 0, 0, 0, 0, 1];

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("HEADERS frame on stream 0")]
    StreamZero,
    #[error("HEADERS frame too short for its padding or priority fields")]
    Truncated,
    #[error("padding longer than the frame")]
    TooMuchPadding,
    #[error("a frame other than CONTINUATION inside a header block")]
    ExpectedContinuation,
    #[error("CONTINUATION frame outside a header block")]
    UnexpectedContinuation,
    #[error("CONTINUATION frame for another stream")]
    ContinuationStreamMismatch,
    #[error("more than {MAX_CONTINUATIONS} CONTINUATION frames in one header block")]
    TooManyContinuations,
    #[error("PUSH_PROMISE from a client")]
    PushPromise,
    #[error(transparent)]
    Block(#[from] BlockError),
}

impl Refusal {
    /// Whether h2 calls this abuse (ENHANCE_YOUR_CALM) rather than a protocol error.
    pub fn is_abuse(&self) -> bool {
        matches!(
            self,
            Refusal::TooManyContinuations | Refusal::Block(BlockError::TooLarge)
        )
    }
}

/// Where in the stream the rewriter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside the client preface, this many bytes matched.
    Preface(usize),
    /// Reading a 9-byte frame header.
    Head,
    /// Passing this many payload bytes of a frame through unchanged.
    Forward(usize),
    /// Buffering this many more payload bytes of a HEADERS or CONTINUATION frame.
    Collect(usize),
    /// Everything passes unchanged: the connection needs no rewriting, or is not HTTP/2
    /// with prior knowledge (h2 refuses it), or its first header block is one h2 must judge.
    Raw,
    /// h2 has been handed what ends the connection; nothing more is read.
    Done,
}

/// The header block being collected.
struct Block {
    stream: u32,
    end_stream: bool,
    /// The HEADERS frame's stream dependency and weight, passed on as they came so h2
    /// applies its own checks (a stream depending on itself is a stream error).
    priority: Option<[u8; 5]>,
    continuations: usize,
}

/// The inbound half of one connection: client bytes in, bytes for h2 out.
pub struct Rewriter {
    state: State,
    head: [u8; HEAD_LEN],
    head_len: usize,
    /// Payload of the HEADERS or CONTINUATION frame being read.
    payload: Vec<u8>,
    /// The header block fragment so far, padding and priority removed.
    fragment: Vec<u8>,
    block: Option<Block>,
    codec: BlockCodec,
    /// The re-encoded block (kept to reuse its allocation).
    encoded: Vec<u8>,
    /// Whether the connection is rewritten; until its first header block decides, the
    /// frames of that block are also kept as they came, in `raw`.
    rewriting: bool,
    raw: Vec<u8>,
    replaced: u64,
    refusal: Option<Refusal>,
}

impl Default for Rewriter {
    fn default() -> Rewriter {
        Rewriter::new()
    }
}

impl Rewriter {
    /// A rewriter at the start of a connection.
    pub fn new() -> Rewriter {
        Rewriter {
            state: State::Preface(0),
            head: [0; HEAD_LEN],
            head_len: 0,
            payload: Vec::new(),
            fragment: Vec::new(),
            block: None,
            codec: BlockCodec::new(),
            encoded: Vec::new(),
            rewriting: false,
            raw: Vec::new(),
            replaced: 0,
            refusal: None,
        }
    }

    /// Takes the next bytes the client sent, in any split, and appends what h2 should
    /// read to `out`. A header block is emitted once it is complete.
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) {
        self.feed_until(input, out, false);
    }

    /// Rewrites `buf` (the next bytes the client sent, just read into h2's own buffer)
    /// where it stands: what passes unchanged — the preface, other frames' heads and
    /// payloads — stays or moves down over the header frames taken out, and each rewritten
    /// header block goes in their place when it fits. Returns how many bytes of `buf` h2
    /// should read; what h2 should read after them is appended to `out`. The same bytes for
    /// h2, in the same order, as [`Rewriter::feed`] gives, without copying what passes.
    pub fn rewrite_in_place(&mut self, buf: &mut [u8], out: &mut BytesMut) -> usize {
        if !out.is_empty() {
            // h2 has yet to read what came before: everything follows it.
            self.feed(buf, out);
            return 0;
        }
        let (mut read, mut written) = (0, 0);
        loop {
            let passed = self.scan(&buf[read..]);
            buf.copy_within(read..read + passed, written);
            read += passed;
            written += passed;
            if read == buf.len() {
                return written;
            }
            // A header block's frame (or a frame head cut short): taken out.
            let start = out.len();
            let taken = self.feed_until(&buf[read..], out, true);
            read += taken;
            let emitted = out.len() - start;
            if taken == 0 || emitted > read - written {
                // Nothing more for h2 (the connection was refused), or a block larger
                // than the frames it came in: the rest follows it in `out`.
                self.feed(&buf[read..], out);
                return written;
            }
            buf[written..written + emitted].copy_from_slice(&out[start..]);
            out.truncate(start);
            written += emitted;
        }
    }

    /// How many of `input`'s first bytes pass to h2 as they are — the preface, frame heads
    /// other than a header block's, other frames' payloads —, accounted for as passed. It
    /// stops where the rewriter must hold bytes back: a header block's frame, or a frame
    /// head cut short.
    fn scan(&mut self, input: &[u8]) -> usize {
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            match self.state {
                State::Raw => return input.len(),
                State::Forward(remaining) => {
                    let n = rest.len().min(remaining);
                    self.state = if n == remaining {
                        State::Head
                    } else {
                        State::Forward(remaining - n)
                    };
                    at += n;
                }
                State::Preface(seen) => {
                    let n = rest.len().min(PREFACE.len() - seen);
                    if rest[..n] != PREFACE[seen..seen + n] {
                        self.state = State::Raw;
                        return input.len();
                    }
                    self.state = if seen + n == PREFACE.len() {
                        State::Head
                    } else {
                        State::Preface(seen + n)
                    };
                    at += n;
                }
                State::Head if self.head_len == 0 && self.block.is_none() => {
                    let Some(head) = rest.first_chunk::<HEAD_LEN>() else {
                        return at;
                    };
                    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]);
                    if matches!(head[3], HEADERS | CONTINUATION | PUSH_PROMISE)
                        || len > MAX_FRAME_SIZE
                    {
                        return at;
                    }
                    // What `start_frame` does with any other frame.
                    self.state = match len {
                        0 => State::Head,
                        len => State::Forward(len as usize),
                    };
                    at += HEAD_LEN;
                }
                State::Head | State::Collect(_) | State::Done => return at,
            }
        }
        at
    }

    /// [`Rewriter::feed`]; with `one_frame`, it stops after the first frame it completes
    /// (or once the rest passes unchanged). Returns how many bytes it took.
    fn feed_until(&mut self, input: &[u8], out: &mut BytesMut, one_frame: bool) -> usize {
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            let taken = match self.state {
                State::Done => return at,
                State::Raw => {
                    if one_frame {
                        return at;
                    }
                    out.put_slice(rest);
                    return input.len();
                }
                State::Preface(seen) => {
                    let n = rest.len().min(PREFACE.len() - seen);
                    if rest[..n] != PREFACE[seen..seen + n] {
                        self.state = State::Raw;
                        continue;
                    }
                    out.put_slice(&rest[..n]);
                    self.state = if seen + n == PREFACE.len() {
                        State::Head
                    } else {
                        State::Preface(seen + n)
                    };
                    n
                }
                State::Head => {
                    let n = rest.len().min(HEAD_LEN - self.head_len);
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&rest[..n]);
                    self.head_len += n;
                    if self.head_len == HEAD_LEN {
                        self.head_len = 0;
                        self.start_frame(out);
                    }
                    n
                }
                State::Forward(remaining) => {
                    let n = rest.len().min(remaining);
                    out.put_slice(&rest[..n]);
                    self.state = if n == remaining {
                        State::Head
                    } else {
                        State::Forward(remaining - n)
                    };
                    n
                }
                State::Collect(remaining) => {
                    let n = rest.len().min(remaining);
                    self.payload.extend_from_slice(&rest[..n]);
                    if n == remaining {
                        self.end_frame(out);
                    } else {
                        self.state = State::Collect(remaining - n);
                    }
                    n
                }
            };
            at += taken;
            // A frame completed, or one that passes unchanged has begun.
            let next = matches!(self.state, State::Head | State::Forward(_)) && self.head_len == 0;
            if one_frame && next {
                return at;
            }
        }
        at
    }

    /// Whether everything from here on passes unchanged: h2 may read the socket itself.
    pub fn passes_everything(&self) -> bool {
        self.state == State::Raw
    }

    /// Whether the connection is over for the rewriter: after a refusal, nothing more
    /// from the client reaches h2.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Why the connection was refused, if it was.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_ref()
    }

    /// Whether the connection's header blocks are being rewritten (its first request had
    /// an `:authority` h2 refuses).
    pub fn rewrites(&self) -> bool {
        self.rewriting
    }

    /// How many `:authority` values were replaced so far.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }

    fn start_frame(&mut self, out: &mut BytesMut) {
        let len = u32::from_be_bytes([0, self.head[0], self.head[1], self.head[2]]);
        let kind = self.head[3];
        if len > MAX_FRAME_SIZE {
            // h2 answers GOAWAY(FRAME_SIZE_ERROR) on seeing this header alone.
            out.put_slice(&self.raw);
            out.put_slice(&self.head);
            self.state = State::Done;
            return;
        }
        let len = len as usize;
        let keep_raw = !self.rewriting && matches!(kind, HEADERS | CONTINUATION | PUSH_PROMISE);
        if !self.rewriting && (keep_raw || self.block.is_some()) {
            self.raw.extend_from_slice(&self.head);
        }
        if self.block.is_some() && kind != CONTINUATION {
            return self.refuse(Refusal::ExpectedContinuation, out);
        }
        match kind {
            HEADERS | CONTINUATION => {
                self.payload.clear();
                if len == 0 {
                    self.end_frame(out);
                } else {
                    self.state = State::Collect(len);
                }
            }
            PUSH_PROMISE => self.refuse(Refusal::PushPromise, out),
            _ => {
                out.put_slice(&self.head);
                self.state = if len == 0 {
                    State::Head
                } else {
                    State::Forward(len)
                };
            }
        }
    }

    /// A HEADERS or CONTINUATION frame's payload is complete in `self.payload`.
    fn end_frame(&mut self, out: &mut BytesMut) {
        self.state = State::Head;
        let kind = self.head[3];
        let flags = self.head[4];
        let stream = u32::from_be_bytes([self.head[5], self.head[6], self.head[7], self.head[8]])
            & 0x7fff_ffff;
        let payload = std::mem::take(&mut self.payload);
        if !self.rewriting {
            self.raw.extend_from_slice(&payload);
        }
        let result = if kind == HEADERS {
            self.headers(flags, stream, &payload)
        } else {
            self.continuation(flags, stream, &payload)
        };
        self.payload = payload;
        match result {
            Err(refusal) => self.refuse(refusal, out),
            Ok(true) => self.finish_block(out),
            Ok(false) => {}
        }
    }

    /// Starts a block; `Ok(true)` when it is already complete.
    fn headers(&mut self, flags: u8, stream: u32, payload: &[u8]) -> Result<bool, Refusal> {
        if stream == 0 {
            return Err(Refusal::StreamZero);
        }
        let mut rest = payload;
        let mut pad = 0;
        if flags & PADDED != 0 {
            let (&n, tail) = rest.split_first().ok_or(Refusal::Truncated)?;
            pad = usize::from(n);
            rest = tail;
        }
        let mut priority = None;
        if flags & PRIORITY != 0 {
            let (dep, tail) = rest.split_first_chunk::<5>().ok_or(Refusal::Truncated)?;
            priority = Some(*dep);
            rest = tail;
        }
        if pad > rest.len() {
            return Err(Refusal::TooMuchPadding);
        }
        let fragment = &rest[..rest.len() - pad];
        self.fragment.clear();
        self.fragment.extend_from_slice(fragment);
        self.block = Some(Block {
            stream,
            end_stream: flags & END_STREAM != 0,
            priority,
            continuations: 0,
        });
        Ok(flags & END_HEADERS != 0)
    }

    /// Extends the block; `Ok(true)` when it is complete.
    fn continuation(&mut self, flags: u8, stream: u32, payload: &[u8]) -> Result<bool, Refusal> {
        let block = self.block.as_mut().ok_or(Refusal::UnexpectedContinuation)?;
        if block.stream != stream {
            return Err(Refusal::ContinuationStreamMismatch);
        }
        let end = flags & END_HEADERS != 0;
        if !end {
            block.continuations += 1;
            if block.continuations > MAX_CONTINUATIONS {
                return Err(Refusal::TooManyContinuations);
            }
        }
        self.fragment.extend_from_slice(payload);
        Ok(end)
    }

    /// Transcodes the complete block and emits it as HEADERS + CONTINUATION frames.
    fn finish_block(&mut self, out: &mut BytesMut) {
        let Some(block) = self.block.take() else {
            return;
        };
        self.encoded.clear();
        // h2 resets a stream that depends on itself before it reads the block.
        let unread = block.priority.is_some_and(|p| {
            u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff == block.stream
        });
        let transcoded = self
            .codec
            .transcode(&self.fragment, unread, &mut self.encoded);
        if !self.rewriting {
            if transcoded != Ok(true) {
                // Nothing to fix, or nothing this layer can read: h2 gets the connection as
                // it is.
                return self.pass_unchanged(out);
            }
            self.rewriting = true;
            self.raw = Vec::new();
        }
        match transcoded {
            Err(e) => return self.refuse(e.into(), out),
            Ok(true) => {
                if self.replaced == 0 {
                    tracing::debug!(
                        stream = block.stream,
                        "replaced an :authority h2 would refuse (a socket path) with localhost"
                    );
                }
                self.replaced += 1;
            }
            Ok(false) => {}
        }
        let max = MAX_FRAME_SIZE as usize;
        let mut flags = if block.end_stream { END_STREAM } else { 0 };
        let prefix: &[u8] = match &block.priority {
            Some(p) => {
                flags |= PRIORITY;
                p
            }
            None => &[],
        };
        let first = self.encoded.len().min(max - prefix.len());
        let (head, mut rest) = self.encoded.split_at(first);
        let end = if rest.is_empty() { END_HEADERS } else { 0 };
        put_head(
            out,
            prefix.len() + head.len(),
            HEADERS,
            flags | end,
            block.stream,
        );
        out.put_slice(prefix);
        out.put_slice(head);
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(max));
            let end = if tail.is_empty() { END_HEADERS } else { 0 };
            put_head(out, chunk.len(), CONTINUATION, end, block.stream);
            out.put_slice(chunk);
            rest = tail;
        }
        // A huge block must not pin its memory for the life of the connection.
        for buf in [&mut self.fragment, &mut self.encoded, &mut self.payload] {
            buf.clear();
            buf.shrink_to(MAX_FRAME_SIZE as usize);
        }
    }

    /// From here on, the client's bytes as they came: first those held back.
    fn pass_unchanged(&mut self, out: &mut BytesMut) {
        out.put_slice(&self.raw);
        self.raw = Vec::new();
        self.block = None;
        self.state = State::Raw;
    }

    fn refuse(&mut self, refusal: Refusal, out: &mut BytesMut) {
        if !self.rewriting {
            // Before the connection is rewritten, h2 is the judge of its problems.
            return self.pass_unchanged(out);
        }
        tracing::debug!("refusing an HTTP/2 connection: {refusal}");
        if refusal.is_abuse() {
            out.put_slice(&CALM_HEAD);
            for _ in 0..=MAX_CONTINUATIONS {
                out.put_slice(&CALM_CONTINUATION);
            }
        } else {
            out.put_slice(&PROTOCOL_ERROR_FRAME);
        }
        self.refusal = Some(refusal);
        self.block = None;
        self.state = State::Done;
    }
}

fn put_head(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = (len as u32).to_be_bytes();
    out.put_slice(&[len[1], len[2], len[3], kind, flags]);
    out.put_u32(stream);
}
