//! client -> counting relay -> wsx proxy -> counting relay -> server, with
//! the wsx library on both ends: what the proxy recorded is what crossed
//! the wire, byte for byte, each way; and each fault does to the client
//! what it says.

use base64::Engine as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsx::client::{ClientConfig, ClientRequest};
use wsx::{CloseCode, CloseFrame, Message};
use wsx_proxy::faults::Faults;
use wsx_proxy::{Output, ProxyConfig, Upstream};

const WAIT: Duration = Duration::from_secs(10);

/// Bytes after the HTTP head, each way (client->server, server->client).
#[derive(Default)]
struct Counts {
    up: AtomicU64,
    down: AtomicU64,
}

/// A TCP relay to `target` that counts what follows the handshake.
async fn counting_relay(target: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Counts>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((a, _)) = l.accept().await else { return };
            let b = TcpStream::connect(target).await.unwrap();
            let (ar, aw) = a.into_split();
            let (br, bw) = b.into_split();
            let c1 = c.clone();
            let c2 = c.clone();
            tokio::spawn(copy_counting(ar, bw, move |n| {
                c1.up.fetch_add(n, Ordering::SeqCst)
            }));
            tokio::spawn(copy_counting(br, aw, move |n| {
                c2.down.fetch_add(n, Ordering::SeqCst)
            }));
        }
    });
    (addr, counts)
}

async fn copy_counting<R, W>(mut r: R, mut w: W, count: impl Fn(u64) -> u64)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut in_head = true;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = w.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        let mut body = &buf[..n];
        if in_head {
            head.extend_from_slice(body);
            match head.windows(4).position(|x| x == b"\r\n\r\n") {
                Some(i) => {
                    in_head = false;
                    count((head.len() - i - 4) as u64);
                    body = &[];
                }
                None => body = &[],
            }
        } else {
            count(n as u64);
        }
        let _ = body;
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// An echo server; on `/close` it closes with 4001 after the first message,
/// on `/drop` it drops the TCP connection after the first message.
async fn echo_server() -> std::net::SocketAddr {
    echo_server_changing(None).await
}

/// The same, answering `changed.1` where it should echo `changed.0`.
async fn echo_server_changing(
    changed: Option<(&'static str, &'static str)>,
) -> std::net::SocketAddr {
    let server = wsx::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve_with(
        |_| Ok(()),
        move |mut ws, accepted| async move {
            let path = accepted.uri.path().to_string();
            while let Ok(Some(m)) = ws.recv().await {
                if matches!(m, Message::Text(_) | Message::Binary(_)) {
                    match path.as_str() {
                        "/close" => {
                            let _ = ws
                                .close(Some(CloseFrame::new(CloseCode(4001), "server says bye")))
                                .await;
                            while let Ok(Some(_)) = ws.recv().await {}
                            return;
                        }
                        "/drop" => return,
                        _ => {
                            let m = match (&m, changed) {
                                (Message::Text(t), Some((from, to))) if t.as_str() == from => {
                                    Message::text(to)
                                }
                                _ => m,
                            };
                            if ws.send(m).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        },
    ));
    addr
}

struct Setup {
    client_side: std::net::SocketAddr,
    front: Arc<Counts>,
    back: Arc<Counts>,
    record: std::path::PathBuf,
}

async fn setup(faults: Faults) -> Setup {
    setup_with(ProxyConfig::new(Upstream::parse("ws://127.0.0.1:1", None).unwrap()).faults(faults))
        .await
}

/// `config`'s upstream is replaced by the counting relay to the server.
async fn setup_with(config: ProxyConfig) -> Setup {
    let server = echo_server().await;
    let (back_addr, back) = counting_relay(server).await;
    let mut config = config;
    config.upstream = Upstream::parse(&format!("ws://{back_addr}"), None).unwrap();
    let proxy = wsx::Server::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let record = std::env::temp_dir().join(format!(
        "wsx-proxy-{}-{}.jsonl",
        std::process::id(),
        proxy_addr.port()
    ));
    let output = Output::quiet().record(std::fs::File::create(&record).unwrap(), true);
    tokio::spawn(wsx_proxy::serve(proxy, config, output));
    let (client_side, front) = counting_relay(proxy_addr).await;
    Setup {
        client_side,
        front,
        back,
        record,
    }
}

/// The recorded events so far. The proxy is still writing while this
/// polls, so a last line without its newline is not an event yet.
fn events(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

async fn connect(
    s: &Setup,
    path: &str,
    config: ClientConfig,
) -> wsx::WebSocket<wsx::MaybeTlsStream> {
    let req = ClientRequest::new(&format!("ws://{}{path}", s.client_side)).unwrap();
    wsx::client::connect_with(&req, &config).await.unwrap().0
}

async fn recv(ws: &mut wsx::WebSocket<wsx::MaybeTlsStream>) -> Option<Message> {
    tokio::time::timeout(WAIT, ws.recv())
        .await
        .expect("timed out")
        .ok()
        .flatten()
}

/// Waits until the recording shows connection `conn` ended.
async fn wait_end(path: &std::path::Path) -> Vec<serde_json::Value> {
    let t = tokio::time::Instant::now();
    loop {
        let e = events(path);
        if e.iter().any(|e| e["event"] == "end") {
            return e;
        }
        assert!(
            t.elapsed() < WAIT,
            "the proxy never reported the end: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_kind_is_relayed_and_recorded_byte_for_byte() {
    let s = setup(Faults::default()).await;
    // Fragments of 100 bytes for what the client sends: a 250-byte
    // message goes as 3 frames.
    let mut config = ClientConfig::default();
    config.limits = wsx::wsx_proto::Config::builder()
        .send_frame_size(Some(100))
        .build()
        .unwrap();
    let mut ws = connect(&s, "/echo?q=1", config).await;
    assert!(
        ws.deflate().is_some(),
        "compression negotiated through the proxy"
    );
    let big = "compress me ".repeat(40); // 480 bytes: compressed
                                         // 250 bytes that do not compress: fragments even when deflated.
    let mut x = 12345u32;
    let noise: Vec<u8> = (0..250)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let sent = vec![
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary(noise),
        Message::text(big.clone()),
    ];
    for m in &sent {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(recv(&mut ws).await.as_ref(), Some(m));
    }
    ws.send(Message::Ping(bytes::Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "done")))
        .await
        .unwrap();
    while recv(&mut ws).await.is_some() {}
    let ev = wait_end(&s.record).await;
    let frames: Vec<&serde_json::Value> = ev.iter().filter(|e| e.get("opcode").is_some()).collect();
    let open = ev.iter().find(|e| e["event"] == "open").unwrap();
    assert_eq!(open["detail"], "/echo?q=1");
    assert!(open["extensions"]
        .as_str()
        .unwrap()
        .contains("permessage-deflate"));

    // Byte for byte: each direction's frames are what each relay counted.
    let wire = |dir: &str| -> u64 {
        frames
            .iter()
            .filter(|f| f["dir"] == dir)
            .map(|f| f["wire"].as_u64().unwrap())
            .sum()
    };
    let (up, down) = (wire("up"), wire("down"));
    assert_eq!(
        up,
        s.front.up.load(Ordering::SeqCst),
        "client -> proxy bytes"
    );
    assert_eq!(
        up,
        s.back.up.load(Ordering::SeqCst),
        "proxy -> server bytes (re-masked, same size)"
    );
    assert_eq!(
        down,
        s.back.down.load(Ordering::SeqCst),
        "server -> proxy bytes"
    );
    assert_eq!(
        down,
        s.front.down.load(Ordering::SeqCst),
        "proxy -> client bytes"
    );

    let kinds: Vec<String> = frames
        .iter()
        .filter(|f| f["dir"] == "up")
        .map(|f| {
            format!(
                "{}{}",
                f["opcode"].as_str().unwrap(),
                if f["fin"] == true { "" } else { "-" }
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "text",
            "binary",
            "binary-",
            "continuation-",
            "continuation",
            "text",
            "ping",
            "close"
        ],
        "the client's frames as sent (fragments kept)"
    );
    assert!(frames
        .iter()
        .filter(|f| f["dir"] == "up")
        .all(|f| f["masked"] == true));
    assert!(frames
        .iter()
        .filter(|f| f["dir"] == "down")
        .all(|f| f["masked"] == false));
    let pong = frames
        .iter()
        .find(|f| f["opcode"] == "pong")
        .expect("the server's pong");
    assert_eq!(pong["dir"], "down");
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(pong["payload"], b64(b"are you there"));
    assert_eq!(frames[0]["text"], "hello");
    assert_eq!(frames[0]["payload"], b64(b"hello"));
    // The compressed one: RSV1, shown inflated both ways.
    let compressed: Vec<_> = frames
        .iter()
        .filter(|f| f["opcode"] == "text" && f["rsv"][0] == true)
        .collect();
    assert_eq!(compressed.len(), 2, "the big text, each way");
    for c in compressed {
        assert!(c["len"].as_u64().unwrap() < 100, "sent compressed: {c}");
        assert_eq!(c["inflated"].as_str().unwrap(), format!("{}…", &big[..120]));
    }
    let closes: Vec<_> = frames.iter().filter(|f| f["opcode"] == "close").collect();
    assert_eq!(closes.len(), 2);
    assert_eq!(
        (
            closes[0]["close_code"].as_u64(),
            closes[0]["close_reason"].as_str()
        ),
        (Some(1000), Some("done"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_close_code_and_a_dropped_server_reach_the_client() {
    let s = setup(Faults::default()).await;
    let mut ws = connect(&s, "/close", ClientConfig::default()).await;
    ws.send(Message::text("hi")).await.unwrap();
    while recv(&mut ws).await.is_some() {}
    let c = ws.close_info().cloned().unwrap();
    assert_eq!((c.code.0, c.reason.as_str()), (4001, "server says bye"));
    let mut ws = connect(&s, "/drop", ClientConfig::default()).await;
    ws.send(Message::text("hi")).await.unwrap();
    let end = tokio::time::timeout(WAIT, ws.recv()).await.unwrap();
    let code = match end {
        Ok(None) => ws.close_info().map_or(1006, |c| c.code.0),
        Err(e) => e.close_code().map_or(1006, |c| c.0),
        Ok(Some(m)) => panic!("unexpected {m:?}"),
    };
    assert_eq!(
        code, 1006,
        "a TCP drop behind the proxy is a 1006 in front of it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_after_3_gives_the_client_1006_after_exactly_three_messages() {
    let mut faults = Faults::default();
    faults.drop_after_messages = Some(Faults::parse_count("3@down").unwrap());
    let s = setup(faults).await;
    let mut ws = connect(&s, "/echo", ClientConfig::default()).await;
    for i in 0..5 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    let mut got = Vec::new();
    let code = loop {
        match tokio::time::timeout(WAIT, ws.recv()).await.unwrap() {
            Ok(Some(m)) => got.push(m),
            Ok(None) => break ws.close_info().map_or(1006, |c| c.code.0),
            Err(e) => break e.close_code().map_or(1006, |c| c.0),
        }
    };
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(code, 1006);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pong_makes_a_keepalive_client_report_a_dead_peer() {
    let mut faults = Faults::default();
    faults.no_pong = Some(wsx_proxy::faults::Target::Both);
    let s = setup(faults).await;
    let mut config = ClientConfig::default();
    config.limits = wsx::wsx_proto::Config::builder()
        .ping_interval(Some(Duration::from_millis(200)))
        .pong_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut ws = connect(&s, "/echo", config).await;
    let t = tokio::time::Instant::now();
    let err = tokio::time::timeout(WAIT, ws.recv()).await.unwrap();
    let e = err.expect_err("the keepalive must fail");
    assert!(
        e.is_timeout() || e.to_string().contains("pong") || e.to_string().contains("keepalive"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // And the recording shows the pings dropped.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ev = events(&s.record);
    assert!(ev.iter().any(
        |e| e["opcode"] == "ping" && e["fault"].as_str().is_some_and(|f| f.contains("no-pong"))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reproduces_the_answers_and_reports_a_planted_difference() {
    let s = setup(Faults::default()).await;
    let mut ws = connect(&s, "/echo?session=7", ClientConfig::default()).await;
    let big = "the same words again and again ".repeat(20); // compressed
    for m in [
        Message::text("m1"),
        Message::text("m2"),
        Message::binary(vec![7u8; 300]),
        Message::text(big.clone()),
    ] {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(recv(&mut ws).await, Some(m));
    }
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        .await
        .unwrap();
    while recv(&mut ws).await.is_some() {}
    wait_end(&s.record).await;

    let conns = wsx_proxy::replay::load(&s.record).unwrap();
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(
        (c.path.as_str(), c.client.len(), c.server.len()),
        ("/echo?session=7", 4, 4)
    );
    assert_eq!(
        c.client[3].1,
        wsx_proxy::replay::Msg::Text(big.clone()),
        "the compressed message, inflated"
    );
    assert_eq!(
        c.close.as_ref().map(|(_, code, r)| (*code, r.as_str())),
        Some((1000, "bye"))
    );

    let config = ClientConfig::default();
    let same = echo_server().await;
    let r = wsx_proxy::replay::replay(c, &format!("ws://{same}"), None, &config)
        .await
        .unwrap();
    assert!(r.differences.is_empty(), "{:?}", r.differences);
    assert_eq!((r.sent, r.received), (4, 4));
    // With the original timing too (the session took well under a second).
    let r = wsx_proxy::replay::replay(c, &format!("ws://{same}"), Some(1.0), &config)
        .await
        .unwrap();
    assert!(r.differences.is_empty(), "{:?}", r.differences);

    let changed = echo_server_changing(Some(("m2", "M2"))).await;
    let r = wsx_proxy::replay::replay(c, &format!("ws://{changed}"), None, &config)
        .await
        .unwrap();
    assert_eq!(r.differences.len(), 1, "{:?}", r.differences);
    assert!(
        r.differences[0].contains("server message 2")
            && r.differences[0].contains("\"m2\"")
            && r.differences[0].contains("\"M2\""),
        "{:?}",
        r.differences
    );

    // A recording without payloads cannot be replayed, and says so.
    let bare =
        std::env::temp_dir().join(format!("wsx-proxy-nopayload-{}.jsonl", std::process::id()));
    let lines: Vec<String> = std::fs::read_to_string(&s.record)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.remove("payload");
            }
            v.to_string()
        })
        .collect();
    std::fs::write(&bare, lines.join("\n")).unwrap();
    let e = wsx_proxy::replay::load(&bare).unwrap_err();
    assert!(e.contains("--no-payload"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_throttle_corrupt_close_after_and_drop_after_time_do_what_they_say() {
    // --delay 150ms@down: each answer at least 150 ms later; requests not.
    let mut f = Faults::default();
    f.delay = Some(Faults::parse_delay("150ms@down").unwrap());
    let s = setup(f).await;
    let mut ws = connect(&s, "/echo", ClientConfig::default()).await;
    let t = tokio::time::Instant::now();
    ws.send(Message::text("slow")).await.unwrap();
    assert_eq!(recv(&mut ws).await, Some(Message::text("slow")));
    let rtt = t.elapsed();
    assert!(
        rtt >= Duration::from_millis(150) && rtt < Duration::from_millis(1000),
        "{rtt:?}"
    );

    // --throttle 20k@up: 100 KB take about 5 s... 40 KB at least 1.5 s.
    let mut f = Faults::default();
    f.throttle = Some(Faults::parse_rate("20k@up").unwrap());
    let s = setup(f).await;
    let mut config = ClientConfig::default();
    config.deflate = None;
    let mut ws = connect(&s, "/echo", config).await;
    let t = tokio::time::Instant::now();
    for _ in 0..10 {
        ws.send(Message::binary(vec![1u8; 4096])).await.unwrap();
    }
    for _ in 0..10 {
        assert!(recv(&mut ws).await.is_some());
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "40 KiB at 20 KiB/s took {took:?}"
    );

    // --corrupt 2@up: the second text frame arrives as invalid UTF-8 and the
    // server fails the connection with 1007; the first one was fine.
    let mut f = Faults::default();
    f.corrupt = Some(Faults::parse_count("2@up").unwrap());
    let s = setup(f).await;
    let mut config = ClientConfig::default();
    config.deflate = None;
    let mut ws = connect(&s, "/echo", config).await;
    ws.send(Message::text("fine")).await.unwrap();
    assert_eq!(recv(&mut ws).await, Some(Message::text("fine")));
    ws.send(Message::text("broken")).await.unwrap();
    while recv(&mut ws).await.is_some() {}
    assert_eq!(
        ws.close_info().map(|c| c.code.0),
        Some(1007),
        "{:?}",
        ws.close_info()
    );

    // --close-after 2 --close-code 4002: after two messages the client is
    // closed with 4002 and the reason.
    let mut f = Faults::default();
    let (n, t) = Faults::parse_count("2@down").unwrap();
    f.close_after = Some((n, 4002, "maintenance".into(), t));
    let s = setup(f).await;
    let mut ws = connect(&s, "/echo", ClientConfig::default()).await;
    for i in 0..3 {
        ws.send(Message::text(format!("c{i}"))).await.unwrap();
    }
    let mut got = 0;
    while let Some(_m) = recv(&mut ws).await {
        got += 1;
    }
    let c = ws.close_info().cloned().unwrap();
    assert_eq!((got, c.code.0, c.reason.as_str()), (2, 4002, "maintenance"));

    // --drop-after-time 300ms: a 1006 about then.
    let mut f = Faults::default();
    f.drop_after_time = Some(Duration::from_millis(300));
    let s = setup(f).await;
    let mut ws = connect(&s, "/echo", ClientConfig::default()).await;
    let t = tokio::time::Instant::now();
    let end = tokio::time::timeout(WAIT, ws.recv()).await.unwrap();
    let code = match end {
        Ok(None) => ws.close_info().map_or(1006, |c| c.code.0),
        Err(e) => e.close_code().map_or(1006, |c| c.0),
        Ok(Some(m)) => panic!("{m:?}"),
    };
    assert_eq!(code, 1006);
    assert!(
        t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_message_each_side_has_its_own_websocket_and_messages_go_whole() {
    let mut config = ProxyConfig::new(Upstream::parse("ws://127.0.0.1:1", None).unwrap());
    config.by_message = true;
    let s = setup_with(config).await;
    let mut c = ClientConfig::default();
    c.limits = wsx::wsx_proto::Config::builder()
        .send_frame_size(Some(100))
        .build()
        .unwrap();
    c.deflate = None;
    let mut ws = connect(&s, "/echo", c).await;
    assert!(
        ws.deflate().is_none(),
        "the client asked for no compression and got none"
    );
    let body = vec![5u8; 250];
    ws.send(Message::binary(body.clone())).await.unwrap();
    assert_eq!(recv(&mut ws).await, Some(Message::binary(body)));
    ws.send(Message::text("whole")).await.unwrap();
    assert_eq!(recv(&mut ws).await, Some(Message::text("whole")));
    ws.close(Some(CloseFrame::new(CloseCode(4003), "by message")))
        .await
        .unwrap();
    while recv(&mut ws).await.is_some() {}
    assert_eq!(
        ws.close_info().map(|c| c.code.0),
        Some(4003),
        "the server's answer to the close came back"
    );
    let ev = wait_end(&s.record).await;
    let open = ev.iter().find(|e| e["event"] == "open").unwrap();
    assert!(
        open["detail"].as_str().unwrap().contains("by message"),
        "{open}"
    );
    let up: Vec<_> = ev
        .iter()
        .filter(|e| e["dir"] == "up" && e.get("opcode").is_some())
        .collect();
    // One line per message: the 250 bytes in three frames are one.
    assert_eq!(up.len(), 2, "{up:?}");
    assert_eq!(
        (up[0]["opcode"].as_str(), up[0]["len"].as_u64()),
        (Some("binary"), Some(250))
    );
    // The fragments were the client's hop only: the upstream hop carried
    // the message in one frame (fewer header bytes).
    let back_up = s.back.up.load(Ordering::SeqCst);
    let front_up = s.front.up.load(Ordering::SeqCst);
    assert!(
        front_up > back_up,
        "re-framed on the upstream side: {front_up} vs {back_up}"
    );
}
