//! Helpers shared by the integration tests: a raw WebSocket peer that writes
//! literal bytes and parses what it reads, independent of wsx-proto.
#![allow(dead_code)]

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use wsx::{
    client::{ClientConfig, ClientRequest},
    ServerConfig, WebSocket,
};

/// The opening handshake request of RFC 6455 §1.3 (sample nonce).
pub const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// `Sec-WebSocket-Accept` for [`REQUEST`]'s key (RFC 6455 §1.3).
pub const REQUEST_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masked "Hello" of RFC 6455 §5.7.
pub const MASKED_HELLO: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// A fixed masking key for frames the raw client writes.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Encodes one frame; `mask` masks the payload (client to server).
pub fn frame(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked, final frame as a client writes it.
pub fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(opcode, true, payload, Some(KEY))
}

/// A close payload: code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// A frame as read off the wire, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, OP_CLOSE, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Reads exactly one frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<RawFrame> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).await?;
            u16::from_be_bytes(b) as u64
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).await?;
            u64::from_be_bytes(b)
        }
        n => n as u64,
    };
    let masked = h[1] & 0x80 != 0;
    let mut key = [0u8; 4];
    if masked {
        r.read_exact(&mut key).await?;
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Ok(RawFrame {
        fin: h[0] & 0x80 != 0,
        rsv: h[0] & 0x70,
        opcode: h[0] & 0x0f,
        masked,
        payload,
    })
}

/// Reads one byte at a time up to and including the blank line, so that
/// nothing after the head is consumed.
pub async fn read_head<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if r.read(&mut b).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("EOF inside head: {:?}", String::from_utf8_lossy(&head)),
            ));
        }
        head.push(b[0]);
    }
    Ok(String::from_utf8(head).expect("ASCII head"))
}

/// Value of header `name` (case-insensitive) in an HTTP head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads until EOF and returns what came.
pub async fn read_to_eof<R: AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await.expect("read to EOF");
    rest
}

/// Asserts that the next read sees EOF (nothing more arrives).
pub async fn expect_eof<R: AsyncRead + Unpin>(r: &mut R) {
    let rest = read_to_eof(r).await;
    assert!(rest.is_empty(), "expected EOF, got {rest:02x?}");
}

/// Runs the wsx server handshake over a duplex pipe with the raw peer on
/// the other end; `first` is written by the peer right after the request,
/// in the same write. Returns the socket and the peer, whose response head
/// was read and checked.
pub async fn server_pair(
    config: &ServerConfig,
    first: &[u8],
) -> (WebSocket<DuplexStream>, DuplexStream) {
    let (server_io, mut peer) = tokio::io::duplex(1 << 20);
    let mut bytes = REQUEST.to_vec();
    bytes.extend_from_slice(first);
    peer.write_all(&bytes).await.unwrap();
    let ws = wsx::server::accept_with(server_io, config, |_| Ok(wsx::server::Accept::default()))
        .await
        .expect("handshake");
    let head = read_head(&mut peer).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(header(&head, "Sec-WebSocket-Accept"), Some(REQUEST_ACCEPT));
    (ws, peer)
}

/// A raw peer writes `bytes` in one write.
pub async fn send_raw<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) {
    w.write_all(bytes).await.unwrap();
}

/// A scripted server's side of the handshake: reads the request head,
/// answers 101 with the right accept key, then writes `after_101` in the same
/// write. Returns the head.
pub async fn answer_101<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, after_101: &[u8]) -> String {
    let head = read_head(io).await.unwrap();
    let key = header(&head, "Sec-WebSocket-Key").expect("key");
    let accept = wsx::wsx_proto::handshake::accept_key(key.as_bytes());
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(after_101);
    io.write_all(&out).await.unwrap();
    head
}

/// Runs `wsx::client` over a duplex pipe against a scripted server that
/// reads the request, computes `Sec-WebSocket-Accept` and answers 101
/// followed, in the same write, by `after_101`. Returns the socket, the
/// server end, and the request head the server read.
pub async fn client_pair(
    config: &ClientConfig,
    after_101: &[u8],
) -> (WebSocket<DuplexStream>, DuplexStream, String) {
    let (client_io, mut server) = tokio::io::duplex(1 << 20);
    let req = ClientRequest::new("ws://x/").unwrap();
    let script = answer_101(&mut server, after_101);
    let (res, head) = tokio::join!(wsx::client::handshake(&req, client_io, config), script);
    let (ws, done) = res.expect("client handshake");
    assert_eq!(
        done.response.status(),
        http::StatusCode::SWITCHING_PROTOCOLS
    );
    assert_eq!(ws.role(), wsx::Role::Client);
    (ws, server, head)
}

/// The status and body of a client handshake refused with a non-101 answer.
#[track_caller]
pub fn rejection(err: &wsx::Error) -> (u16, Vec<u8>) {
    use wsx::wsx_proto::handshake::ClientHandshakeError;
    match err.client_handshake() {
        Some(ClientHandshakeError::Rejected(r)) => (r.status.as_u16(), r.body.to_vec()),
        other => panic!("not a rejection: {other:?}: {err}"),
    }
}
