//! `ClientHandshake::handle_data` on arbitrary server bytes.
//!
//! Input: `[split_lo, split_hi, response bytes...]`. The client offers
//! subprotocols `chat`, `superchat` and the extension `permessage-deflate`,
//! with the RFC 6455 sample key (`dGhlIHNhbXBsZSBub25jZQ==`, accept
//! `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`), so valid responses are reachable.
//!
//! Oracles:
//! - whole and split agree (same error, or same response, subprotocol,
//!   extensions and leftover; `handle_eof` then gives the same error);
//! - a success is a 101 whose subprotocol and extensions were offered, and
//!   the leftover is a suffix of the input;
//! - `handle_eof` and further `handle_data` calls never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsx_proto::handshake::{ClientHandshake, ClientHandshakeError, ClientRequest, Handshaken};

const KEY: [u8; 16] = *b"the sample nonce";

fn new_handshake() -> ClientHandshake {
    let req = ClientRequest::new("ws://server.example.com/chat")
        .expect("url")
        .protocol("chat")
        .protocol("superchat")
        .extensions("permessage-deflate; client_max_window_bits");
    ClientHandshake::new(&req, KEY).0
}

type Outcome = Result<Option<Handshaken>, ClientHandshakeError>;

fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Ok(None), Ok(None)) => true,
        (Err(x), Err(y)) => x == y,
        (Ok(Some(x)), Ok(Some(y))) => {
            x.response.status() == y.response.status()
                && x.response.headers() == y.response.headers()
                && x.protocol == y.protocol
                && x.extensions == y.extensions
                && x.leftover == y.leftover
        }
        _ => false,
    }
}

fuzz_target!(|input: &[u8]| {
    let [lo, hi, ref data @ ..] = *input else {
        return;
    };
    let split = usize::from(u16::from_le_bytes([lo, hi])) % (data.len() + 1);

    let mut a = new_handshake();
    let whole = a.handle_data(data);
    let mut b = new_handshake();
    let split_outcome = match b.handle_data(&data[..split]) {
        Ok(None) => b.handle_data(&data[split..]),
        Ok(Some(mut h)) => {
            let mut all = h.leftover.to_vec();
            all.extend_from_slice(&data[split..]);
            h.leftover = all.into();
            Ok(Some(h))
        }
        Err(e) => Err(e),
    };
    assert!(
        same(&whole, &split_outcome),
        "whole and split (at {split}) disagree:\n  whole: {}\n  split: {}",
        wsx_fuzz::clip(format!("{whole:?}")),
        wsx_fuzz::clip(format!("{split_outcome:?}"))
    );

    match &whole {
        Ok(None) => {
            let (ea, eb) = (a.handle_eof(), b.handle_eof());
            assert_eq!(ea, eb, "handle_eof differs between whole and split");
            match ea {
                ClientHandshakeError::Closed | ClientHandshakeError::Rejected(_) => {}
                other => panic!("handle_eof returned {other:?}"),
            }
        }
        Ok(Some(h)) => {
            assert_eq!(h.response.status().as_u16(), 101);
            if let Some(p) = &h.protocol {
                assert!(
                    p == "chat" || p == "superchat",
                    "unoffered subprotocol {p:?} accepted"
                );
            }
            for e in &h.extensions {
                assert_eq!(e.name, "permessage-deflate", "unoffered extension accepted");
            }
            assert!(
                data.ends_with(&h.leftover),
                "leftover is not the end of the input"
            );
        }
        Err(ClientHandshakeError::Rejected(r)) => {
            assert_ne!(r.status.as_u16(), 101);
            assert!(
                r.body.len() <= 1024,
                "rejection body of {} bytes kept",
                r.body.len()
            );
        }
        Err(_) => {}
    }
    // Whatever happened, more calls must not panic.
    let _ = a.handle_data(&data[..split]);
    let _ = a.handle_eof();
    let _ = a.is_rejected();
});
