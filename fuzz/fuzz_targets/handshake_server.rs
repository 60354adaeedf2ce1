//! `ServerHandshake::handle_data` on arbitrary request bytes.
//!
//! Input: `[split_lo, split_hi, limit, request bytes...]`. The request bytes
//! are parsed whole and split in two at `u16(split) % (len + 1)`; `limit`
//! with its top bit set picks a small head limit (32 + 8 * low bits) so the
//! 431 path is reachable at libFuzzer's default input size.
//!
//! Oracles:
//! - whole and split agree: same `Ok(None)`, same error status, or the same
//!   request (method, URI, version, headers) with the same leftover bytes;
//! - errors are 400 or 431; the leftover is a suffix of the input, and the
//!   head without it parses to the same request with nothing left over;
//! - `Upgrade::new` either fails with 400/405/426/431 and a `response()`
//!   starting `HTTP/1.1 <status> ` that our own client reads back as that
//!   status and body, or succeeds and `accept()` gives a `HTTP/1.1 101`
//!   response that our own client, using the same key, accepts.
//! - the same head as an HTTP/2 extended CONNECT (RFC 8441; method CONNECT
//!   unless `limit` bit 2, `:protocol` chosen by `limit` bits 0-1):
//!   `Upgrade::extended_connect` fails with 400/405/426/501, or succeeds
//!   only for `:protocol = websocket` and answers 200 without the HTTP/1.1
//!   upgrade headers (Sec-WebSocket-Accept only for a valid key the client
//!   sent, and correct), which our own HTTP/2 client handshake accepts.
#![no_main]
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use wsx_proto::handshake::{
    accept_key, Accept, ClientHandshake, ClientHandshakeError, ClientRequest, HandshakeError,
    ParsedRequest, ServerHandshake, Upgrade,
};

fn new_parser(limit: u8) -> ServerHandshake {
    if limit & 0x80 != 0 {
        ServerHandshake::with_max_bytes(32 + usize::from(limit & 0x7f) * 8)
    } else {
        ServerHandshake::new()
    }
}

type Outcome = Result<Option<ParsedRequest>, HandshakeError>;

fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Ok(None), Ok(None)) => true,
        (Err(x), Err(y)) => x.status() == y.status(),
        (Ok(Some((ra, la))), Ok(Some((rb, lb)))) => {
            ra.method() == rb.method()
                && ra.uri() == rb.uri()
                && ra.version() == rb.version()
                && ra.headers() == rb.headers()
                && la == lb
        }
        _ => false,
    }
}

fn show(o: &Outcome) -> String {
    match o {
        Ok(None) => "Ok(None)".into(),
        Ok(Some((r, rest))) => format!("Ok({r:?}, leftover {rest:?})"),
        Err(e) => format!("Err({} {e})", e.status()),
    }
}

fuzz_target!(|input: &[u8]| {
    let [lo, hi, limit, ref data @ ..] = *input else {
        return;
    };
    let split = usize::from(u16::from_le_bytes([lo, hi])) % (data.len() + 1);

    let whole = new_parser(limit).handle_data(data);
    let mut hs = new_parser(limit);
    let split_outcome = match hs.handle_data(&data[..split]) {
        Ok(None) => hs.handle_data(&data[split..]),
        // Complete in the first piece: the rest is leftover too.
        Ok(Some((req, rest))) => {
            let mut all = rest.to_vec();
            all.extend_from_slice(&data[split..]);
            Ok(Some((req, all.into())))
        }
        Err(e) => Err(e),
    };
    assert!(
        same(&whole, &split_outcome),
        "whole and split (at {split}) disagree:\n  whole: {}\n  split: {}",
        wsx_fuzz::clip(show(&whole)),
        wsx_fuzz::clip(show(&split_outcome))
    );

    let (req, rest) = match whole {
        Ok(None) => return,
        Err(e) => {
            let status = e.status().as_u16();
            assert!(
                matches!(status, 400 | 431),
                "handle_data error with status {status}: {e}"
            );
            check_error_response(&e);
            return;
        }
        Ok(Some(x)) => x,
    };
    assert!(
        data.ends_with(&rest),
        "leftover is not the end of the input"
    );
    let head = &data[..data.len() - rest.len()];
    let again = new_parser(limit).handle_data(head);
    let want: Outcome = Ok(Some((req.clone(), bytes::Bytes::new())));
    assert!(
        same(&again, &want),
        "the head alone parses differently: {}",
        show(&again)
    );

    check_extended_connect(&req, limit);
    match Upgrade::new(req) {
        Err(e) => {
            let status = e.status().as_u16();
            assert!(
                matches!(status, 400 | 405 | 426 | 431),
                "Upgrade::new error with status {status}: {e}"
            );
            check_error_response(&e);
        }
        Ok(up) => {
            let resp = up.accept(&Accept::default()).expect("accept with defaults");
            assert!(
                resp.starts_with(b"HTTP/1.1 101 "),
                "accept() response: {:?}",
                String::from_utf8_lossy(&resp)
            );
            let key = up.headers()["sec-websocket-key"].as_bytes();
            let key = std::str::from_utf8(key)
                .expect("a valid key is ASCII")
                .trim_matches(|c: char| c.is_ascii_whitespace());
            let accept_line = format!(
                "\r\nSec-WebSocket-Accept: {}\r\n",
                accept_key(key.as_bytes())
            );
            assert!(
                contains(&resp, accept_line.as_bytes()),
                "accept() lacks {accept_line:?}"
            );

            // Our client, using the same key, accepts the response.
            let raw = base64::engine::general_purpose::STANDARD
                .decode(key)
                .expect("a valid key is base64");
            let raw: [u8; 16] = raw.try_into().expect("a valid key is 16 bytes");
            let offered: Vec<&String> = up.protocols().iter().filter(|p| is_token(p)).collect();
            let mut creq = ClientRequest::new("ws://server.example/").expect("url");
            for p in &offered {
                creq = creq.protocol(p.as_str());
            }
            let (mut client, _) = ClientHandshake::new(&creq, raw);
            let done = client.handle_data(&resp);
            assert!(
                matches!(done, Ok(Some(_))),
                "our client rejects accept(): {done:?}"
            );

            // Selecting the first offered subprotocol is echoed and accepted.
            if let Some(p) = offered.first() {
                let accept = Accept {
                    protocol: Some(p.to_string()),
                    ..Default::default()
                };
                let resp = up.accept(&accept).expect("offered protocol");
                let (mut client, _) = ClientHandshake::new(&creq, raw);
                match client.handle_data(&resp) {
                    Ok(Some(h)) => assert_eq!(h.protocol.as_deref(), Some(p.as_str())),
                    other => panic!("our client rejects the selected protocol {p:?}: {other:?}"),
                }
            }
        }
    }
});

/// The head as an HTTP/2 extended CONNECT.
fn check_extended_connect(req: &http::Request<()>, limit: u8) {
    let protocol = [
        None,
        Some("websocket"),
        Some("WebSocket"),
        Some("webtransport"),
    ][usize::from(limit & 3)];
    let mut h2 = http::Request::new(());
    *h2.method_mut() = if limit & 4 == 0 {
        http::Method::CONNECT
    } else {
        req.method().clone()
    };
    *h2.version_mut() = http::Version::HTTP_2;
    *h2.uri_mut() = req.uri().clone();
    *h2.headers_mut() = req.headers().clone();
    match Upgrade::extended_connect(h2, protocol) {
        Err(e) => {
            let status = e.status().as_u16();
            assert!(
                matches!(status, 400 | 405 | 426 | 501),
                "extended_connect error with status {status}: {e}"
            );
            assert_eq!(e.http_response().status(), e.status());
        }
        Ok(up) => {
            assert!(
                protocol.is_some_and(|p| p.eq_ignore_ascii_case("websocket")),
                "extended_connect accepted :protocol {protocol:?}"
            );
            assert!(up.is_http2());
            let r = up.accept_response(&Accept::default()).expect("defaults");
            assert_eq!(r.status(), http::StatusCode::OK);
            for h in ["upgrade", "connection"] {
                assert!(!r.headers().contains_key(h), "HTTP/2 answer has {h}");
            }
            // An accept value only for a key the client sent, and the right one.
            if let Some(a) = r.headers().get("sec-websocket-accept") {
                let key = up.headers()["sec-websocket-key"].as_bytes();
                let key = std::str::from_utf8(key)
                    .expect("an answered key is ASCII")
                    .trim_matches(|c: char| c.is_ascii_whitespace());
                assert_eq!(a.as_bytes(), accept_key(key.as_bytes()).as_bytes());
            }
            let offered: Vec<&String> = up.protocols().iter().filter(|p| is_token(p)).collect();
            let mut creq = ClientRequest::new("wss://server.example/").expect("url");
            for p in &offered {
                creq = creq.protocol(p.as_str());
            }
            let (mut client, _) = ClientHandshake::extended_connect(&creq);
            let done = client.handle_response(r.status(), r.headers().clone(), Default::default());
            assert!(
                done.is_ok(),
                "our HTTP/2 client rejects the answer: {done:?}"
            );
            if let Some(p) = offered.first() {
                let accept = Accept {
                    protocol: Some(p.to_string()),
                    ..Default::default()
                };
                let r = up.accept_response(&accept).expect("offered protocol");
                let (mut client, _) = ClientHandshake::extended_connect(&creq);
                match client.handle_response(r.status(), r.headers().clone(), Default::default()) {
                    Ok(h) => assert_eq!(h.protocol.as_deref(), Some(p.as_str())),
                    other => panic!("our HTTP/2 client rejects protocol {p:?}: {other:?}"),
                }
            }
        }
    }
}

fn check_error_response(e: &HandshakeError) {
    let status = e.status().as_u16();
    let resp = e.response();
    let prefix = format!("HTTP/1.1 {status} ");
    assert!(
        resp.starts_with(prefix.as_bytes()),
        "response() does not start with {prefix:?}: {:?}",
        String::from_utf8_lossy(&resp)
    );
    // Our own client reads it back as a rejection with that status and body.
    let creq = ClientRequest::new("ws://server.example/").expect("url");
    let (mut client, _) = ClientHandshake::new(&creq, [0; 16]);
    let body_at = find(&resp, b"\r\n\r\n").expect("response has a head") + 4;
    match client.handle_data(&resp) {
        Err(ClientHandshakeError::Rejected(r)) => {
            assert_eq!(r.status.as_u16(), status);
            let want = &resp[body_at..];
            assert_eq!(
                &r.body[..],
                &want[..want.len().min(1024)],
                "body read back differs"
            );
        }
        other => panic!("our client misreads the {status} response: {other:?}"),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// An RFC 7230 token: what RFC 6455 §4.1 requires of a subprotocol name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}
