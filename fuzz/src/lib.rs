//! Shared oracles for the wsx-proto fuzz targets (see `fuzz_targets/`).
//!
//! - [`OutputChecker`] drains a [`Connection`]'s `transmit()` queue and decodes
//!   everything the connection ever wrote with [`FrameHeader::decode`],
//!   checking each frame against RFC 6455 (masking by role, control frame
//!   rules, fragment sequencing, close payloads, nothing after the close).
//! - [`EventChecker`] checks the event stream: at most one `Closed`, nothing
//!   after it, text is UTF-8, fragments are well sequenced.
//!
//! Every check panics with a message naming the broken property, so a
//! libFuzzer crash report says which oracle failed.

use bytes::Buf;
use std::io::IoSlice;
use wsx_proto::close::CloseFrame;
use wsx_proto::frame::{FrameHeader, OpCode};
use wsx_proto::mask::apply_mask;
use wsx_proto::{Closed, Connection, DataKind, Event, Message, Polled, Role, SendError};

/// One frame the connection wrote, payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFrame {
    /// The decoded header.
    pub header: FrameHeader,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl OutFrame {
    /// The opcode.
    pub fn opcode(&self) -> OpCode {
        self.header.opcode
    }
}

/// Decodes and checks everything a connection writes.
#[derive(Debug)]
pub struct OutputChecker {
    role: Role,
    /// Every byte drained from `transmit()` so far.
    pub wire: Vec<u8>,
    /// Bytes of `wire` already decoded into `frames`.
    parsed: usize,
    /// Every complete frame written so far.
    pub frames: Vec<OutFrame>,
    /// Index in `frames` of the first close frame.
    pub close_at: Option<usize>,
    /// A fragmented data message is open on the wire (a non-fin text/binary
    /// frame was written and its fin continuation was not).
    sending_fragmented: bool,
}

impl OutputChecker {
    /// A checker for a connection of `role`.
    pub fn new(role: Role) -> Self {
        OutputChecker {
            role,
            wire: Vec::new(),
            parsed: 0,
            frames: Vec::new(),
            close_at: None,
            sending_fragmented: false,
        }
    }

    /// Total bytes the connection has queued so far (drained + still pending).
    pub fn total_queued(&self, conn: &Connection) -> usize {
        self.wire.len() + conn.pending_output()
    }

    /// Drains up to `max` bytes of `transmit()` (in pieces of at most
    /// `step` bytes, to exercise `OutBuf::advance` across chunk boundaries)
    /// and decodes the complete frames among them.
    pub fn drain_some(&mut self, conn: &mut Connection, max: usize, step: usize) {
        let out = conn.transmit();
        check_outbuf(out);
        let mut left = max.min(out.remaining());
        let step = step.max(1);
        while left > 0 {
            let chunk = out.chunk();
            assert!(
                !chunk.is_empty(),
                "OutBuf::chunk empty with {left} bytes remaining"
            );
            let take = chunk.len().min(left).min(step);
            self.wire.extend_from_slice(&chunk[..take]);
            out.advance(take);
            left -= take;
        }
        assert_eq!(
            out.remaining(),
            conn.pending_output(),
            "OutBuf::remaining disagrees with pending_output"
        );
        self.parse();
    }

    /// Drains all of `transmit()` and checks that it ends on a frame boundary
    /// (every command writes whole frames).
    pub fn drain_all(&mut self, conn: &mut Connection) {
        self.drain_some(conn, usize::MAX, usize::MAX);
        assert_eq!(
            conn.pending_output(),
            0,
            "transmit() not empty after draining it"
        );
        assert_eq!(
            self.parsed,
            self.wire.len(),
            "output ends inside a frame: {:02x?}",
            &self.wire[self.parsed..]
        );
    }

    fn parse(&mut self) {
        loop {
            let rest = &self.wire[self.parsed..];
            let (header, n) = match FrameHeader::decode(rest) {
                Ok(Some(h)) => h,
                Ok(None) => return,
                Err(e) => panic!("connection wrote an undecodable frame header: {e}: {rest:02x?}"),
            };
            let len = usize::try_from(header.payload_len).expect("payload length fits usize");
            if rest.len() - n < len {
                return;
            }
            assert_eq!(
                n,
                header.encoded_len(),
                "connection wrote a non-minimal length encoding: {header:?}"
            );
            let mut payload = rest[n..n + len].to_vec();
            match (self.role, header.mask) {
                (Role::Client, Some(key)) => apply_mask(&mut payload, key, 0),
                (Role::Client, None) => panic!("client wrote an unmasked frame: {header:?}"),
                (Role::Server, Some(_)) => panic!("server wrote a masked frame: {header:?}"),
                (Role::Server, None) => {}
            }
            self.parsed += n + len;
            self.check_frame(&header, &payload);
            self.frames.push(OutFrame { header, payload });
        }
    }

    fn check_frame(&mut self, h: &FrameHeader, payload: &[u8]) {
        if let Some(at) = self.close_at {
            panic!(
                "frame {h:?} written after the close frame (frame #{at}); RFC 6455 §5.5.1: nothing may be sent after a close frame"
            );
        }
        assert_eq!(h.rsv, 0, "RSV bits set on an outgoing frame: {h:?}");
        assert!(!h.opcode.is_reserved(), "reserved opcode written: {h:?}");
        if h.opcode.is_control() {
            assert!(h.fin, "fragmented control frame written: {h:?}");
            assert!(
                h.payload_len <= 125,
                "control frame over 125 bytes written: {h:?}"
            );
            if h.opcode == OpCode::CLOSE {
                match CloseFrame::parse(payload) {
                    Ok(_) => {}
                    Err(e) => {
                        panic!("connection wrote an invalid close payload {payload:02x?}: {e}")
                    }
                }
                self.close_at = Some(self.frames.len());
            }
        } else {
            let continuation = h.opcode == OpCode::CONTINUATION;
            assert_eq!(
                continuation, self.sending_fragmented,
                "fragment out of sequence on the wire: {h:?} (a fragmented message open: {})",
                self.sending_fragmented
            );
            self.sending_fragmented = !h.fin;
        }
    }

    /// The first close frame's payload, if one was written.
    pub fn close_payload(&self) -> Option<&[u8]> {
        self.close_at.map(|i| &self.frames[i].payload[..])
    }
}

/// `Buf` consistency of the output queue: `chunks_vectored` covers exactly
/// `remaining()` bytes, and `chunk()` is non-empty iff bytes remain.
pub fn check_outbuf(out: &wsx_proto::OutBuf) {
    let mut slices = [IoSlice::new(&[]); 64];
    let n = out.chunks_vectored(&mut slices);
    let total: usize = slices[..n].iter().map(|s| s.len()).sum();
    if n < slices.len() {
        assert_eq!(
            total,
            out.remaining(),
            "chunks_vectored does not cover remaining()"
        );
    } else {
        assert!(total <= out.remaining());
    }
    assert!(
        slices[..n].iter().all(|s| !s.is_empty()),
        "chunks_vectored returned an empty slice"
    );
    assert_eq!(
        out.chunk().is_empty(),
        out.remaining() == 0,
        "chunk() emptiness vs remaining()"
    );
}

/// The close payload `frame` encodes to on the wire (reason truncated at a
/// character boundary to 123 bytes).
pub fn encode_close(frame: Option<&CloseFrame>) -> Vec<u8> {
    let Some(f) = frame else { return Vec::new() };
    let mut out = f.code.0.to_be_bytes().to_vec();
    let mut end = f.reason.len().min(wsx_proto::close::MAX_REASON_LEN);
    while !f.reason.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&f.reason.as_bytes()[..end]);
    out
}

/// Checks the event stream of one connection.
#[derive(Debug, Default)]
pub struct EventChecker {
    /// The `Closed` event, once seen.
    pub closed: Option<Closed>,
    /// Payload bytes delivered in data events (text, binary, fragments).
    pub data_bytes: usize,
    /// Every ping payload received, in order.
    pub pings: Vec<Vec<u8>>,
    /// Events seen.
    pub events: usize,
    /// An open fragmented message: its kind and, for text, the bytes so far.
    fragment: Option<(DataKind, Vec<u8>)>,
    /// Bytes of the open fragmented message so far.
    fragment_len: usize,
    /// `(max_frame_size, max_message_size)`: no delivered data may exceed them.
    pub limits: Option<(usize, usize)>,
    /// Frames of the open fragmented message so far, `max_fragments` and
    /// `min_fragment_average`.
    fragment_frames: usize,
    max_fragments: usize,
    min_average: usize,
}

impl EventChecker {
    /// A checker that also enforces `config`'s size limits on delivered data.
    pub fn for_config(config: &wsx_proto::Config) -> Self {
        EventChecker {
            limits: Some((config.max_frame_size(), config.max_message_size())),
            max_fragments: config.max_fragments(),
            min_average: config.min_fragment_average(),
            ..Default::default()
        }
    }

    fn check_size(&self, what: &str, len: usize, frame: bool) {
        if let Some((max_frame, max_message)) = self.limits {
            let max = if frame {
                max_frame.min(max_message)
            } else {
                max_message
            };
            assert!(
                len <= max,
                "{what} of {len} bytes delivered past the limit {max}"
            );
        }
    }

    /// Checks one event; `deliver_fragments` is the connection's setting.
    pub fn check(&mut self, ev: &Event, deliver_fragments: bool) {
        self.events += 1;
        if let Some(c) = &self.closed {
            panic!("event {ev:?} after Closed ({c:?})");
        }
        match ev {
            Event::Text(t) => {
                assert!(
                    !deliver_fragments,
                    "whole Text event with deliver_fragments on"
                );
                // as_str() re-validates; std's validator is the independent check.
                let s = t.as_str();
                assert!(
                    std::str::from_utf8(t.as_bytes()).is_ok(),
                    "Text event is not UTF-8"
                );
                self.check_size("text message", s.len(), false);
                self.data_bytes += s.len();
            }
            Event::Binary(b) => {
                assert!(
                    !deliver_fragments,
                    "whole Binary event with deliver_fragments on"
                );
                self.check_size("binary message", b.len(), false);
                self.data_bytes += b.len();
            }
            Event::Fragment(f) => {
                assert!(
                    deliver_fragments,
                    "Fragment event with deliver_fragments off"
                );
                self.data_bytes += f.data.len();
                self.check_size("fragment", f.data.len(), true);
                if f.first {
                    self.fragment_len = 0;
                    self.fragment_frames = 0;
                }
                self.fragment_len += f.data.len();
                self.fragment_frames += 1;
                // Bytes before this frame were enough for its number.
                let before = self.fragment_len - f.data.len();
                if self.min_average > 0 && self.fragment_frames > 1025 {
                    assert!(
                        (self.fragment_frames - 1 - 1024) * self.min_average < before,
                        "frame {} delivered after {before} bytes, below min_fragment_average {}",
                        self.fragment_frames,
                        self.min_average
                    );
                }
                if self.max_fragments > 0 {
                    assert!(
                        self.fragment_frames <= self.max_fragments,
                        "message delivered in {} frames past max_fragments {}",
                        self.fragment_frames,
                        self.max_fragments
                    );
                }
                self.check_size("fragmented message", self.fragment_len, false);
                match (&mut self.fragment, f.first) {
                    (None, true) => {}
                    (Some(_), true) => panic!("first fragment while a message is open: {f:?}"),
                    (None, false) => panic!("continuation fragment with no open message: {f:?}"),
                    (Some((kind, _)), false) => {
                        assert_eq!(*kind, f.kind, "fragment kind changed mid-message")
                    }
                }
                let mut text = match self.fragment.take() {
                    Some((_, t)) => t,
                    None => Vec::new(),
                };
                if f.kind == DataKind::Text {
                    text.extend_from_slice(&f.data);
                    if f.fin {
                        assert!(
                            std::str::from_utf8(&text).is_ok(),
                            "fragmented text message is not UTF-8 once complete"
                        );
                    } else if let Err(e) = std::str::from_utf8(&text) {
                        // Validated as it arrives: at most an unfinished code point at the end.
                        assert!(
                            e.error_len().is_none(),
                            "text fragment delivered after invalid UTF-8"
                        );
                    }
                }
                if !f.fin {
                    self.fragment = Some((f.kind, text));
                }
            }
            Event::Ping(p) => {
                assert!(p.len() <= 125, "ping over 125 bytes delivered");
                self.pings.push(p.to_vec());
            }
            Event::Pong(p) => assert!(p.len() <= 125, "pong over 125 bytes delivered"),
            Event::Closed(c) => {
                if let Some(sent) = &c.sent {
                    assert!(
                        sent.code.is_sendable(),
                        "Closed.sent has an unsendable code: {c:?}"
                    );
                }
                self.closed = Some(c.clone());
            }
        }
    }
}

/// Splits `data` after every occurrence of `sep` (the separator stays in the
/// data: the concatenated chunks are exactly `data`).
pub fn chunks(data: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(move |&b| b == sep)
}

/// A small configuration chosen by `flags`, so the fuzzer reaches the limits:
/// bit 0 delivers fragments; bits 1-2 pick `max_frame_size` (64 KiB, 16, 200,
/// 4096); bits 3-4 pick `max_message_size` (64 KiB, 1000, 24, 130); bits
/// 5-6 pick `max_fragments` (the default, 1, 3, 16).
pub fn small_config(flags: u8) -> wsx_proto::Config {
    let frame = [64 << 10, 16, 200, 4096][usize::from((flags >> 1) & 3)];
    let message = [64 << 10, 1000, 24, 130][usize::from((flags >> 3) & 3)];
    let fragments =
        [wsx_proto::config::DEFAULT_MAX_FRAGMENTS, 1, 3, 16][usize::from((flags >> 5) & 3)];
    wsx_proto::Config::builder()
        .deliver_fragments(flags & 1 != 0)
        .max_frame_size(frame)
        .max_message_size(message)
        .max_fragments(fragments)
        .build()
        .expect("valid config")
}

/// The `connection_server` / `connection_client` target: `input[0]` is the
/// chunk separator, `input[1]` the [`small_config`] flags, the rest the
/// peer's byte stream, fed in chunks that end after each separator byte.
/// A connection for the fuzzers: `role`, `config`, and permessage-deflate
/// negotiated (with its own default offer) when `deflate`.
pub fn new_connection(
    role: Role,
    config: wsx_proto::Config,
    deflate: bool,
    now: std::time::Instant,
) -> Connection {
    let mut conn = match role {
        Role::Server => Connection::server(config, now),
        Role::Client => Connection::client(config, [0; 32], now),
    };
    if deflate {
        use wsx_proto::deflate::DeflateConfig;
        let d = DeflateConfig::default();
        let offer = wsx_proto::handshake::parse_extensions(&d.offer()).expect("offer parses");
        let server = d.negotiate_server(&offer).expect("own offer accepted");
        let negotiated = match role {
            Role::Server => server,
            Role::Client => {
                let accepted = wsx_proto::handshake::parse_extensions(&server.response)
                    .expect("response parses");
                d.negotiate_client(&accepted)
                    .expect("own response valid")
                    .expect("negotiated")
            }
        };
        conn.enable_deflate(negotiated);
    }
    conn
}

/// `poll_in_place` against `poll_event` on the same input (laid out as for
/// [`fuzz_connection`]): the same events, a held message read as the owned
/// one; with every data message echoed (held ones by `echo_held`, owned ones
/// by `send`), the same results and the same bytes written.
pub fn fuzz_in_place(role: Role, input: &[u8]) {
    let [sep, flags, ref stream @ ..] = *input else {
        return;
    };
    let config = small_config(flags);
    let deflate = flags & 0x80 != 0;
    let max = [0, 1, 20, 125, 4095, usize::MAX][usize::from(sep / 7 % 6)];
    let echo = sep & 0x80 != 0;
    let upkeep = sep & 0x40 != 0;
    let now = std::time::Instant::now();
    let mut owned = new_connection(role, config.clone(), deflate, now);
    let mut held = new_connection(role, config, deflate, now);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let data_of = |e: &Event| match e {
        Event::Text(t) => Some(Message::Text(t.clone())),
        Event::Binary(d) => Some(Message::Binary(d.clone())),
        _ => None,
    };
    let mut run = |owned: &mut Connection, held: &mut Connection| {
        while let Some(e) = owned.poll_event() {
            let data = data_of(&e);
            if upkeep && data.is_some() {
                // At the same points as in the run below: giving buffers
                // back may also drop an idle compressor (and its window),
                // which changes the bytes of later compressed echoes.
                owned.shrink_buffers();
            }
            let sent = match data {
                Some(m) if echo => Some(owned.send(m)),
                _ => None,
            };
            a.push((e, sent));
        }
        while let Some(p) = held.poll_in_place(max) {
            match p {
                Polled::Held(h) => {
                    if upkeep {
                        // Consumes what earlier messages left skipped, and
                        // must keep this one's place.
                        held.shrink_buffers();
                    }
                    let m = held.held_message().expect("Held with nothing held");
                    assert_eq!(held.held().map(<[u8]>::len), Some(h.len));
                    assert_eq!(m.len(), h.len);
                    let e = match m {
                        Message::Text(t) => Event::Text(t),
                        Message::Binary(d) => Event::Binary(d),
                        m => panic!("held a control message: {m:?}"),
                    };
                    assert!(h.len <= max, "held {} bytes, max {max}", h.len);
                    b.push((e, echo.then(|| held.echo_held())));
                }
                Polled::Event(e) => {
                    let data = data_of(&e);
                    if upkeep && data.is_some() {
                        held.shrink_buffers();
                    }
                    let sent = match data {
                        Some(m) if echo => Some(held.send(m)),
                        _ => None,
                    };
                    b.push((e, sent));
                }
            }
        }
        assert_eq!(held.echo_held(), Err(SendError::NothingHeld));
    };
    for chunk in chunks(stream, sep) {
        owned.handle_data(chunk, now);
        held.handle_data(chunk, now);
        run(&mut owned, &mut held);
    }
    owned.handle_eof();
    held.handle_eof();
    run(&mut owned, &mut held);
    assert_eq!(a, b, "poll_in_place and poll_event disagree");
    let wire = |c: &mut Connection| {
        let out = c.transmit();
        let mut v = Vec::new();
        while out.has_remaining() {
            let n = out.chunk().len();
            v.extend_from_slice(out.chunk());
            out.advance(n);
        }
        v
    };
    assert_eq!(wire(&mut owned), wire(&mut held), "written bytes differ");
}

pub fn fuzz_connection(role: Role, input: &[u8]) {
    let [sep, flags, ref stream @ ..] = *input else {
        return;
    };
    let config = small_config(flags);
    let fragments = config.deliver_fragments();
    let mut ev = EventChecker::for_config(&config);
    // Bit 7: permessage-deflate negotiated, so RSV1 frames are inflated.
    // Inflated fragments may then exceed max_frame_size (the frame limit
    // is on the wire); messages still may not exceed max_message_size.
    let deflate = flags & 0x80 != 0;
    if deflate {
        ev.limits = Some((config.max_message_size(), config.max_message_size()));
    }
    let now = std::time::Instant::now();
    let mut conn = new_connection(role, config, deflate, now);
    let mut out = OutputChecker::new(role);
    // Total queued output when Closed was seen: it may never grow after.
    let mut frozen: Option<usize> = None;

    let poll = |conn: &mut Connection,
                out: &mut OutputChecker,
                ev: &mut EventChecker,
                frozen: &mut Option<usize>| {
        while let Some(e) = conn.poll_event() {
            ev.check(&e, fragments);
            if let Event::Closed(_) = e {
                assert!(
                    conn.is_closed() && conn.is_closing(),
                    "Closed but is_closed() is false"
                );
                assert_eq!(conn.poll_timeout(), None, "a deadline after Closed");
                *frozen = Some(out.total_queued(conn));
            }
            // Drain in odd-sized pieces now and then to exercise OutBuf.
            out.drain_some(conn, usize::MAX, 1 + usize::from(sep % 7) * 977);
        }
        if let Some(total) = *frozen {
            assert_eq!(
                out.total_queued(conn),
                total,
                "transmit() grew after Closed"
            );
            assert!(
                conn.send(wsx_proto::Message::binary(&b"x"[..])).is_err(),
                "send accepted after Closed"
            );
        }
    };

    for chunk in chunks(stream, sep) {
        conn.handle_data(chunk, now);
        poll(&mut conn, &mut out, &mut ev, &mut frozen);
    }
    conn.handle_eof();
    poll(&mut conn, &mut out, &mut ev, &mut frozen);
    assert_eq!(conn.poll_event(), None, "poll_event after the end");
    out.drain_all(&mut conn);

    // Exactly one Closed, once the stream has ended.
    let closed = ev.closed.clone().expect("no Closed event after handle_eof");
    let len = stream.len();
    assert!(
        deflate || ev.data_bytes <= len,
        "{} data bytes delivered from {len} input bytes",
        ev.data_bytes
    );
    let bound = match role {
        // Pongs echo pings; a client adds a 4-byte mask to each (a 2-byte
        // empty ping becomes a 6-byte pong, hence 3x).
        Role::Server => 2 * len + 1024,
        Role::Client => 3 * len + 1024,
    };
    assert!(
        out.wire.len() <= bound,
        "{} bytes queued for {len} input bytes",
        out.wire.len()
    );

    // Everything written is a pong per ping, in order, then at most one close.
    let (body, close) = match out.close_at {
        Some(i) => {
            assert_eq!(i + 1, out.frames.len(), "frames after the close frame");
            (&out.frames[..i], Some(&out.frames[i]))
        }
        None => (&out.frames[..], None),
    };
    let pongs: Vec<&[u8]> = body
        .iter()
        .map(|f| {
            assert_eq!(f.opcode(), OpCode::PONG, "unexpected frame written: {f:?}");
            &f.payload[..]
        })
        .collect();
    let pings: Vec<&[u8]> = ev.pings.iter().map(|p| &p[..]).collect();
    assert_eq!(pongs, pings, "pongs written do not echo the pings received");

    use wsx_proto::{CloseCause, CloseCode, Initiator};
    match &closed.cause {
        None => {
            // The peer's close frame: answered, echoing its code.
            assert_eq!(closed.initiator, Initiator::Remote, "{closed:?}");
            let reply = close.expect("clean close without a reply close frame");
            assert_eq!(
                reply.payload,
                encode_close(closed.sent.as_ref()),
                "{closed:?}"
            );
            match &closed.sent {
                Some(s) => assert_eq!(s.code, closed.code, "reply code differs: {closed:?}"),
                None => assert_eq!(closed.code, CloseCode::NO_STATUS, "{closed:?}"),
            }
        }
        Some(CloseCause::Protocol(e)) => {
            assert_eq!(closed.initiator, Initiator::Local, "{closed:?}");
            assert_eq!(closed.code, e.close_code(), "{closed:?}");
            let frame = close.expect("protocol error without a close frame");
            let sent = closed
                .sent
                .as_ref()
                .expect("protocol error: Closed.sent is None");
            assert_eq!(sent.code, e.close_code(), "{closed:?}");
            assert_eq!(frame.payload, encode_close(Some(sent)), "{closed:?}");
        }
        Some(CloseCause::PeerVanished) => {
            assert_eq!(closed.initiator, Initiator::Remote, "{closed:?}");
            assert_eq!(closed.code, CloseCode::ABNORMAL, "{closed:?}");
            assert!(
                close.is_none(),
                "close frame written but Closed says PeerVanished: {closed:?}"
            );
            assert_eq!(closed.sent, None);
        }
        Some(other) => panic!("impossible close cause without timers: {other:?} ({closed:?})"),
    }
}

/// Whether inputs that reproduce the known bug `id` should be skipped.
///
/// Set `WSX_FUZZ_SKIP_KNOWN` to a comma-separated list of ids (or `all`) to
/// keep fuzzing past bugs that are already reported but not fixed yet; by
/// default nothing is skipped, so a fixed bug's oracle stays armed. The ids
/// are listed in fuzz/README.md; delete an id's check once its fix lands.
pub fn skip_known(id: &str) -> bool {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let list = LIST.get_or_init(|| {
        std::env::var("WSX_FUZZ_SKIP_KNOWN")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    list.iter().any(|s| s == id || s == "all")
}

/// `text`, cut to at most 1500 characters for a panic message.
pub fn clip(text: String) -> String {
    match text.char_indices().nth(1500) {
        Some((i, _)) => format!("{}... ({} bytes)", &text[..i], text.len()),
        None => text,
    }
}
