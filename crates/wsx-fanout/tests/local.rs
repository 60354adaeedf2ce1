//! In one process (no Redis): the same guarantees from the room's own
//! history, and bare payloads for clients without the subprotocol.

mod common;

use common::*;
use std::time::Duration;
use wsx::client::{ClientConfig, ClientRequest};
use wsx::Message;
use wsx_fanout::{Fanout, FanoutConfig, Payload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_history_bounds_and_idempotency_in_one_process() {
    let node = Node::start(Fanout::local(FanoutConfig::default().history(100))).await;
    let mut c = Client::join(&node, "/r", "").await;
    publish_n(&node.fanout, "/r", 0, 10).await;
    c.wait_for(10).await;
    let at10 = c.resume_query();
    drop(c);
    publish_n(&node.fanout, "/r", 10, 100).await;
    let mut back = Client::join(&node, "/r", &at10).await;
    assert_eq!(back.recovery(), ("recovered".into(), 100, None));
    back.wait_for(100).await;
    assert_contiguous(&back.offsets(), 11, 110);
    publish_n(&node.fanout, "/r", 110, 1).await;
    back.wait_for(101).await;
    let over = Client::join(&node, "/r", &at10).await;
    let (recovery, _, reason) = over.recovery();
    assert_eq!(recovery, "unrecoverable");
    assert!(reason.unwrap().contains("101 messages were missed"));
    // A position from another life of the process.
    let other = Client::join(&node, "/r", "?since=3&epoch=feedbeef").await;
    assert!(other.recovery().2.unwrap().contains("epoch feedbeef"));
    // Idempotency keys.
    let p1 = node
        .fanout
        .publish(
            "/r",
            Payload {
                text: true,
                data: "x".into(),
            },
            Some("k"),
        )
        .await
        .unwrap();
    let p2 = node
        .fanout
        .publish(
            "/r",
            Payload {
                text: true,
                data: "x".into(),
            },
            Some("k"),
        )
        .await
        .unwrap();
    assert_eq!(p1.position, p2.position);
    assert!(p2.duplicate && !p1.duplicate);
    // A malformed resume is refused by the query parser, not guessed at.
    assert!(wsx_fanout::resume_from_query("since=x&epoch=e").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_the_subprotocol_get_and_send_bare_payloads() {
    let node = Node::start(Fanout::local(FanoutConfig::default())).await;
    let connect = || async {
        let req = ClientRequest::new(&format!("ws://{}/plain", node.addr)).unwrap();
        wsx::client::connect_with(&req, &ClientConfig::default())
            .await
            .unwrap()
            .0
    };
    let mut a = connect().await;
    let mut b = connect().await;
    let mut env = Client::join(&node, "/plain", "").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.send(Message::text("hi from a")).await.unwrap();
    b.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = tokio::time::timeout(WAIT, b.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(m);
    }
    assert!(seen.contains(&Message::text("hi from a")));
    assert!(seen.contains(&Message::binary(vec![0u8, 1, 2])));
    // The enveloped member got both, with positions; binary in base64.
    env.wait_for(2).await;
    assert_contiguous(&env.offsets(), 1, 2);
    let _ = a.recv().await;
}
