//! `Config::send_frame_size`: long messages leave as several frames (first
//! with the opcode, continuations after, FIN on the last) and the peer
//! reassembles them; with permessage-deflate the compressed payload is
//! split and only the first frame carries RSV1 (RFC 7692 §6.1).

mod common;

use common::*;
use std::time::Instant;
use wsx_proto::{Config, Event, Message, Role};

fn config(limit: Option<usize>) -> Config {
    Config::builder().send_frame_size(limit).build().unwrap()
}

/// Sends `msg` from a `role` endpoint and returns the frames on the wire.
fn frames_of(role: Role, limit: Option<usize>, msg: Message) -> (Vec<WireFrame>, Vec<u8>) {
    let now = Instant::now();
    let mut c = conn(role, config(limit), now);
    c.send(msg).unwrap();
    let wire = drain(&mut c);
    (parse_frames(&wire), wire)
}

#[test]
fn long_messages_are_split_and_reassembled() {
    for role in [Role::Server, Role::Client] {
        let payload = pattern(10_000);
        let (frames, wire) = frames_of(role, Some(4096), Message::binary(payload.clone()));
        let sizes: Vec<usize> = frames.iter().map(|f| f.payload.len()).collect();
        assert_eq!(sizes, [4096, 4096, 1808], "{role:?}");
        let ops: Vec<u8> = frames.iter().map(WireFrame::opcode).collect();
        assert_eq!(ops, [BINARY, CONT, CONT], "{role:?}");
        let fins: Vec<bool> = frames.iter().map(WireFrame::fin).collect();
        assert_eq!(fins, [false, false, true], "{role:?}");
        assert!(frames.iter().all(|f| f.b0 & 0x70 == 0), "no RSV bits");
        assert_eq!(
            frames.iter().all(|f| f.mask.is_some()),
            role == Role::Client
        );
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.payload.clone()).collect();
        assert_eq!(joined, payload);

        // The peer gets one message back.
        let mut peer = conn(peer_of(role), Config::default(), Instant::now());
        let events = feed(&mut peer, &wire, Instant::now());
        assert_eq!(events, [Event::Binary(payload.into())], "{role:?}");
    }
}

#[test]
fn text_is_split_on_bytes_and_still_arrives_whole() {
    // "é" is two bytes: a frame boundary may fall inside a character; only
    // the whole message must be valid UTF-8 (RFC 6455 §5.6).
    let text = "é".repeat(5);
    let (frames, wire) = frames_of(Role::Server, Some(3), Message::text(text.clone()));
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[0].opcode(), TEXT);
    let mut peer = conn(Role::Client, Config::default(), Instant::now());
    match feed(&mut peer, &wire, Instant::now()).as_slice() {
        [Event::Text(t)] => assert_eq!(t.as_str(), text),
        other => panic!("{}", summary(other)),
    }
}

#[test]
fn short_messages_and_control_frames_stay_whole() {
    for (len, limit) in [(4096, Some(4096)), (0, Some(1)), (100_000, None)] {
        let (frames, _) = frames_of(Role::Server, limit, Message::binary(pattern(len)));
        assert_eq!(frames.len(), 1, "{len} bytes, limit {limit:?}");
        assert!(frames[0].fin());
    }
    let (frames, _) = frames_of(Role::Server, Some(4), Message::Ping(pattern(100).into()));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode(), PING);
}

#[test]
fn zero_is_refused() {
    let e = Config::builder()
        .send_frame_size(Some(0))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("send_frame_size"), "{e}");
}

#[cfg(feature = "deflate")]
#[test]
fn compressed_messages_split_with_rsv1_on_the_first_frame_only() {
    use wsx_proto::deflate::DeflateConfig;
    use wsx_proto::handshake::parse_extensions;

    let d = DeflateConfig::default();
    let offer = parse_extensions(&d.offer()).unwrap();
    let server_side = d
        .negotiate_server(&offer)
        .expect("server accepts its own offer");
    let answer = parse_extensions(&server_side.response).unwrap();
    let client_side = d
        .negotiate_client(&answer)
        .unwrap()
        .expect("client accepts");

    let now = Instant::now();
    let mut server = conn(Role::Server, config(Some(64)), now);
    server.enable_deflate(server_side);
    let mut client = conn(Role::Client, Config::default(), now);
    client.enable_deflate(client_side);

    // Text that compresses, but not below 64 bytes.
    let text: String = (0..2000)
        .map(|i| format!("{} ", i * 7919 % 10007))
        .collect();
    server.send(Message::text(text.clone())).unwrap();
    let wire = drain(&mut server);
    let frames = parse_frames(&wire);
    assert!(frames.len() > 2, "{} frames", frames.len());
    let total: usize = frames.iter().map(|f| f.payload.len()).sum();
    assert!(total < text.len(), "compressed: {total} of {}", text.len());
    assert_eq!(frames[0].b0 & 0x70, 0x40, "RSV1 on the first frame");
    assert!(
        frames[1..].iter().all(|f| f.b0 & 0x70 == 0),
        "only the first"
    );
    assert!(frames.iter().all(|f| f.payload.len() <= 64));
    match feed(&mut client, &wire, now).as_slice() {
        [Event::Text(t)] => assert_eq!(t.as_str(), text),
        other => panic!("{}", summary(other)),
    }
}
