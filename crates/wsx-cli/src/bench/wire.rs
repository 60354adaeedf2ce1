//! Our frames and the server's echoes on the wire. Frames are encoded once
//! by a `wsx-proto` client [`Connection`] (masked, and compressed with
//! permessage-deflate) and resent as they are; echoes are parsed in place
//! (plain frames, raw TCP) or through a `Connection` (deflate: inflated,
//! then compared).

use bytes::{Buf, BytesMut};
use tokio::time::Instant;
use wsx::wsx_proto::frame::{FrameHeader, OpCode};
use wsx::wsx_proto::{CloseCode, CloseFrame, Config, Connection, Event, Message};

/// One echo at the front of `rbuf`: `(bytes consumed, Some(echo matches))`,
/// `(consumed, None)` for a control frame, `None` if incomplete.
fn next_echo(
    rbuf: &[u8],
    raw: bool,
    frame: &[u8],
    payload: &[u8],
) -> Result<Option<(usize, Option<bool>)>, String> {
    if raw {
        // A raw TCP echo returns our (masked) frame bytes as they were.
        if rbuf.len() < frame.len() {
            return Ok(None);
        }
        return Ok(Some((frame.len(), Some(&rbuf[..frame.len()] == frame))));
    }
    let Some((h, hl)) = FrameHeader::decode(rbuf).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let len = h.payload_len as usize;
    if rbuf.len() < hl + len {
        return Ok(None);
    }
    match h.opcode {
        OpCode::TEXT | OpCode::BINARY => {
            let ok = h.fin && h.mask.is_none() && &rbuf[hl..hl + len] == payload;
            Ok(Some((hl + len, Some(ok))))
        }
        OpCode::CLOSE => Err("server sent a close frame mid-benchmark".into()),
        _ => Ok(Some((hl + len, None))),
    }
}

/// Where echoes are parsed: in place (plain frames, raw TCP), or through a
/// `wsx-proto` connection (permessage-deflate: inflated, then compared).
pub(super) enum Rx {
    Frames(BytesMut),
    Proto(Box<Connection>),
}

impl Rx {
    pub(super) fn buffer(&mut self) -> &mut BytesMut {
        match self {
            Rx::Frames(b) => {
                if b.capacity() - b.len() < 16 * 1024 {
                    b.reserve(64 * 1024);
                }
                b
            }
            Rx::Proto(c) => c.recv_buffer(),
        }
    }

    pub(super) fn received(&mut self, now: Instant) {
        if let Rx::Proto(c) = self {
            c.handle_received(now.into_std());
        }
    }

    /// The next echo: `Some(Some(matches))`, `Some(None)` for a control
    /// frame, `None` when no whole message is buffered.
    pub(super) fn next_echo(
        &mut self,
        raw: bool,
        frame: &[u8],
        payload: &[u8],
    ) -> Result<Option<Option<bool>>, String> {
        match self {
            Rx::Frames(b) => Ok(next_echo(b, raw, frame, payload)?.map(|(consumed, ok)| {
                b.advance(consumed);
                ok
            })),
            Rx::Proto(c) => match c.poll_event() {
                None => Ok(None),
                Some(Event::Text(t)) => Ok(Some(Some(t.as_bytes()[..] == *payload))),
                Some(Event::Binary(b)) => Ok(Some(Some(b[..] == *payload))),
                Some(Event::Ping(_) | Event::Pong(_) | Event::Fragment(_)) => Ok(Some(None)),
                Some(Event::Closed(c)) => Err(format!(
                    "connection closed mid-benchmark: {} {}",
                    c.code.0, c.reason
                )),
            },
        }
    }

    /// Moves what the connection queued (pongs) to `out`.
    pub(super) fn take_output(&mut self, out: &mut Vec<u8>) {
        if let Rx::Proto(c) = self {
            drain(c, out);
        }
    }
}

/// A client connection (its masking keys from a generator seeded with `n`),
/// open as after a handshake.
fn client_connection(n: u64) -> Connection {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    Connection::client(Config::default(), seed, std::time::Instant::now())
}

/// The masked frames of `payloads` (uncompressed), to be resent as they are.
///
/// # Errors
/// A text payload that is not UTF-8 (the payloads of a text run are ASCII).
pub(super) fn plain_frames(payloads: &[Vec<u8>], text: bool) -> Result<Vec<Vec<u8>>, String> {
    // The masking keys differ from run to run, as they did when the frames
    // were masked by hand with a key from the clock.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5a5a_5a5a, |d| d.subsec_nanos());
    let mut c = client_connection(u64::from(nanos));
    payloads
        .iter()
        .map(|p| data_frame(&mut c, p, text))
        .collect()
}

/// A masked close frame with code 1000.
pub(super) fn close_frame() -> Vec<u8> {
    let mut c = client_connection(0);
    let mut f = Vec::new();
    if c.close(
        Some(CloseFrame::new(CloseCode::NORMAL, "")),
        std::time::Instant::now(),
    )
    .is_ok()
    {
        drain(&mut c, &mut f);
    }
    f
}

/// A client connection with permessage-deflate on, fed what followed the 101.
pub(super) fn deflate_connection(
    negotiated: wsx::wsx_proto::deflate::Negotiated,
    leftover: &[u8],
    i: usize,
) -> Connection {
    let now = std::time::Instant::now();
    let mut c = client_connection(i as u64);
    c.enable_deflate(negotiated);
    if !leftover.is_empty() {
        c.handle_data(leftover, now);
    }
    c
}

/// Our message as the connection frames it: masked, and compressed (above
/// the threshold) when deflate is on. Resent as is: client_no_context_takeover
/// makes each compressed message independent of the ones before it.
pub(super) fn data_frame(
    c: &mut Connection,
    payload: &[u8],
    text: bool,
) -> Result<Vec<u8>, String> {
    let msg = if text {
        let s = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        Message::text(s.to_owned())
    } else {
        Message::binary(bytes::Bytes::copy_from_slice(payload))
    };
    c.send(msg).map_err(|e| e.to_string())?;
    let mut frame = Vec::new();
    drain(c, &mut frame);
    Ok(frame)
}

/// Moves the bytes the connection queued to `out`.
fn drain(c: &mut Connection, out: &mut Vec<u8>) {
    let t = c.transmit();
    while t.has_remaining() {
        let chunk = t.chunk();
        let n = chunk.len();
        out.extend_from_slice(chunk);
        t.advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsx::wsx_proto::mask::apply_mask;

    /// The header and the unmasked payload of the one frame in `bytes`.
    fn unmask(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let (h, n) = FrameHeader::decode(bytes).unwrap().expect("a whole header");
        assert_eq!(bytes.len(), n + h.payload_len as usize, "one frame");
        let mut payload = bytes[n..].to_vec();
        apply_mask(&mut payload, h.mask.expect("a client frame is masked"), 0);
        (h, payload)
    }

    #[test]
    fn our_frames_are_single_masked_client_frames() {
        let payloads = [b"hello".to_vec(), vec![0xab; 70_000]];
        let frames = plain_frames(&payloads, false).unwrap();
        for (frame, payload) in frames.iter().zip(&payloads) {
            let (h, got) = unmask(frame);
            assert!(h.fin && h.rsv == 0 && h.opcode == OpCode::BINARY);
            assert_eq!(&got, payload);
        }
        let (h, got) = unmask(&plain_frames(&[b"hi".to_vec()], true).unwrap()[0]);
        assert_eq!((h.opcode, &got[..]), (OpCode::TEXT, &b"hi"[..]));
        let (h, got) = unmask(&close_frame());
        assert_eq!((h.opcode, &got[..]), (OpCode::CLOSE, &[0x03, 0xe8][..]));
    }

    #[test]
    fn echoes_are_matched_in_place() {
        // An unmasked echo of "hi", then a ping, then half a frame.
        let buf = [0x82, 2, b'h', b'i', 0x89, 0, 0x82, 5, b'h'];
        assert_eq!(
            next_echo(&buf, false, &[], b"hi"),
            Ok(Some((4, Some(true))))
        );
        assert_eq!(
            next_echo(&buf, false, &[], b"ho"),
            Ok(Some((4, Some(false))))
        );
        assert_eq!(next_echo(&buf[4..], false, &[], b"hi"), Ok(Some((2, None))));
        assert_eq!(next_echo(&buf[6..], false, &[], b"hello"), Ok(None));
        // A raw TCP echo gives back our frame bytes.
        assert_eq!(
            next_echo(&buf, true, &buf[..4], &[]),
            Ok(Some((4, Some(true))))
        );
        assert!(next_echo(&[0x88, 0], false, &[], b"hi").is_err());
    }
}
