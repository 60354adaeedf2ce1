//! Across nodes on a real redis-server (Debian's, started by
//! scripts/redis.sh on a free loopback port): order, presence, recovery,
//! history bounds, a lost history, a dropped subscription, Redis killed.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use wsx_fanout::{FanoutConfig, Payload};

fn config() -> FanoutConfig {
    FanoutConfig::default().presence_ttl(Duration::from_millis(1500))
}

fn text(s: String) -> Payload {
    Payload {
        text: true,
        data: s.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_message_in_the_same_order() {
    let redis = Redis::start(&[]);
    let nodes = [
        Node::redis(&redis, config()).await,
        Node::redis(&redis, config()).await,
        Node::redis(&redis, config()).await,
    ];
    let mut clients = Vec::new();
    for n in &nodes {
        clients.push(Client::join(n, "/chat", "").await);
        clients.push(Client::join(n, "/chat", "").await);
    }
    // Publishers on two nodes at once, and clients publishing too.
    let (a, b) = (nodes[0].fanout.clone(), nodes[1].fanout.clone());
    let pa = tokio::spawn(async move { publish_n(&a, "/chat", 0, 150).await });
    let pb = tokio::spawn(async move { publish_n(&b, "/chat", 1000, 150).await });
    clients[5].publish("from a client", None).await;
    pa.await.unwrap();
    pb.await.unwrap();
    let first = {
        clients[0].wait_for(301).await;
        clients[0].got.clone()
    };
    assert_contiguous(&clients[0].offsets(), 1, 301);
    for (i, c) in clients.iter_mut().enumerate() {
        c.wait_for(301).await;
        assert_eq!(c.got, first, "client {i} saw another order");
    }
    assert_eq!(clients[5].acks.len(), 1, "the client's publish was acked");
    // Other rooms are apart.
    let mut other = Client::join(&nodes[2], "/other", "").await;
    publish_n(&nodes[0].fanout, "/other", 0, 3).await;
    other.wait_for(3).await;
    assert_contiguous(&other.offsets(), 1, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_across_nodes_and_a_dead_nodes_entries_expire() {
    let redis = Redis::start(&[]);
    let a = Node::redis(&redis, config()).await;
    let b = Node::redis(&redis, config()).await;
    let _c1 = Client::join(&a, "/room", "").await;
    let _c2 = Client::join(&a, "/room", "").await;
    let c3 = Client::join(&b, "/room", "").await;
    let seen = a.fanout.presence("/room").await.unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen.iter().filter(|e| e.node == b.fanout.node()).count(), 1);
    // A client leaving is gone at once.
    drop(c3);
    let t = Instant::now();
    while b.fanout.presence("/room").await.unwrap().len() != 2 {
        assert!(t.elapsed() < WAIT, "a departed member is still listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A node that dies (SIGKILL: its members never leave, it stops
    // renewing): its entries expire after its presence ttl (1.5 s).
    let mut dead = ProcessNode::start(&redis, 1500);
    let ghost = Client::join_addr(dead.addr, "/room", "").await;
    let listed = a.fanout.presence("/room").await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let dead_id = listed
        .iter()
        .find(|e| e.node != a.fanout.node() && e.node != b.fanout.node())
        .unwrap()
        .node
        .clone();
    dead.kill9();
    let t = Instant::now();
    loop {
        let now = a.fanout.presence("/room").await.unwrap();
        if now.iter().all(|e| e.node != dead_id) {
            assert_eq!(now.len(), 2, "{now:?}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(6),
            "a dead node's entry outlived its ttl: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "a SIGKILLed node's presence expired {:?} after the kill",
        t.elapsed()
    );
    drop(ghost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_missed_100_gets_exactly_those_100_on_another_node() {
    let redis = Redis::start(&[]);
    let a = Node::redis(&redis, config()).await;
    let b = Node::redis(&redis, config()).await;
    let mut c = Client::join(&a, "/feed", "").await;
    publish_n(&b.fanout, "/feed", 0, 20).await;
    c.wait_for(20).await;
    let resume = c.resume_query();
    drop(c);
    publish_n(&b.fanout, "/feed", 20, 100).await;
    // Back, on the other node, with its position; live ones follow.
    let mut again = Client::join(&b, "/feed", &resume).await;
    assert_eq!(again.recovery(), ("recovered".into(), 100, None));
    publish_n(&a.fanout, "/feed", 120, 5).await;
    again.wait_for(105).await;
    assert_contiguous(&again.offsets(), 21, 125);
    assert_eq!(again.got[0].2, "m20");
    assert!(again.got.iter().all(|(e, _, _)| *e == again.got[0].0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_history_n_n_missed_recover_and_n_plus_1_are_unrecoverable() {
    let redis = Redis::start(&[]);
    let cfg = || config().history(50);
    let a = Node::redis(&redis, cfg()).await;
    let b = Node::redis(&redis, cfg()).await;
    let mut c = Client::join(&a, "/h", "").await;
    publish_n(&b.fanout, "/h", 0, 10).await;
    c.wait_for(10).await;
    let at10 = c.resume_query();
    publish_n(&b.fanout, "/h", 10, 50).await; // 11..=60
    c.wait_for(60).await;
    let at60 = c.resume_query();
    drop(c);
    // 50 missed since offset 10: all there (offsets 11..=60).
    let mut ok = Client::join(&b, "/h", &at10).await;
    assert_eq!(ok.recovery(), ("recovered".into(), 50, None));
    ok.wait_for(50).await;
    assert_contiguous(&ok.offsets(), 11, 60);
    // One more: 51 missed since offset 10 -> unrecoverable, and why.
    publish_n(&b.fanout, "/h", 60, 1).await;
    ok.wait_for(51).await;
    let mut over = Client::join(&a, "/h", &at10).await;
    let (recovery, missed, reason) = over.recovery();
    assert_eq!((recovery.as_str(), missed), ("unrecoverable", 0));
    assert!(
        reason
            .as_deref()
            .unwrap()
            .contains("51 messages were missed"),
        "{reason:?}"
    );
    // It still gets live messages.
    publish_n(&b.fanout, "/h", 61, 1).await;
    over.wait_for(1).await;
    assert_eq!(over.offsets(), [62]);
    // A fresh node (nothing cached) reads the history from Redis: 1 missed.
    let c2 = Node::redis(&redis, cfg()).await;
    let mut fresh = Client::join(&c2, "/h", &at60).await;
    assert_eq!(fresh.recovery(), ("recovered".into(), 2, None));
    fresh.wait_for(2).await;
    assert_contiguous(&fresh.offsets(), 61, 62);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_means_a_new_epoch_and_unrecoverable() {
    let redis = Redis::start(&[]);
    let a = Node::redis(&redis, config()).await;
    let mut c = Client::join(&a, "/e", "").await;
    publish_n(&a.fanout, "/e", 0, 5).await;
    c.wait_for(5).await;
    let old_epoch = c.got[0].0.clone();
    let resume = c.resume_query();
    let restart = tokio::task::spawn_blocking(move || {
        redis.restart(Duration::from_millis(500));
        redis
    });
    let redis = restart.await.unwrap();
    // Publishing works again once the node reconnects.
    let t = Instant::now();
    let p = loop {
        match a.fanout.publish("/e", text("after".into()), None).await {
            Ok(p) => break p,
            Err(e) => {
                assert!(e.retryable, "{e}");
                assert!(
                    t.elapsed() < WAIT,
                    "no publish went through 10 s after the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_ne!(p.position.epoch, old_epoch, "a new history, a new epoch");
    assert_eq!(p.position.offset, 1);
    // The connected client sees the new epoch's messages...
    assert!(
        c.until(WAIT, |c| c
            .got
            .iter()
            .any(|(e, _, _)| *e == p.position.epoch))
            .await
    );
    // ...and one resuming from the old epoch is told plainly.
    let mut late = Client::join(&a, "/e", &resume).await;
    let (recovery, _, reason) = late.recovery();
    assert_eq!(recovery, "unrecoverable");
    assert!(
        reason.as_deref().unwrap().contains("history was lost"),
        "{reason:?}"
    );
    // (epoch, offset) pairs are never reused: the old epoch had 1..=5.
    publish_n(&a.fanout, "/e", 100, 1).await;
    late.wait_for(1).await;
    assert_eq!(late.got[0].0, p.position.epoch);
    drop(redis);
}

/// An acknowledged publish: epoch, offset, when.
type Acked = (String, u64, Instant);

/// Publishes every `every` until `stop`; the acknowledged positions (and
/// when) and the number of errors.
fn publisher(
    f: wsx_fanout::Fanout,
    room: &'static str,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(Vec<Acked>, usize)> {
    tokio::spawn(async move {
        let (mut acked, mut errors, mut i) = (Vec::new(), 0, 0);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match f.publish(room, text(format!("p{i}")), None).await {
                Ok(p) => acked.push((p.position.epoch, p.position.offset, Instant::now())),
                Err(e) => {
                    assert!(e.retryable && e.message.contains("Redis"), "{e}");
                    errors += 1;
                }
            }
            i += 1;
            tokio::time::sleep(every).await;
        }
        (acked, errors)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pubsub_connection_is_noticed_and_the_gap_filled_within_a_second() {
    let redis = Redis::start(&[]);
    let a = Node::redis(&redis, config()).await;
    let b = Node::redis(&redis, config()).await;
    let mut c = Client::join(&a, "/g", "").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let p = publisher(
        b.fanout.clone(),
        "/g",
        Duration::from_millis(2),
        stop.clone(),
    );
    c.wait_for(20).await;
    // 1. The subscriptions killed; they come straight back.
    let killed = redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, "2", "both nodes' Pub/Sub connections");
    c.until(Duration::from_millis(700), |_| false).await;
    // 2. Killed, and kept from reconnecting for 300 ms (Redis refuses new
    // connections at maxclients): what is published meanwhile is missed
    // on the subscription for sure.
    let mut admin = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut admin)
        .await
        .unwrap();
    let connected: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg(connected - 2)
        .query_async(&mut admin)
        .await
        .unwrap();
    let killed: usize = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 2);
    c.until(Duration::from_millis(300), |_| false).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg(10000)
        .query_async(&mut admin)
        .await
        .unwrap();
    let restored = Instant::now();
    let filled_before = a.fanout.metrics().gap_filled.get();
    c.until(Duration::from_millis(1500), |_| false).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, errors) = p.await.unwrap();
    assert_eq!(
        errors, 0,
        "the publisher's connection was not the one killed"
    );
    let last = acked.last().unwrap().1;
    c.wait_for(last as usize).await;
    assert_contiguous(&c.offsets(), 1, last);
    let filled = a.fanout.metrics().gap_filled.get() - filled_before;
    assert!(
        filled > 0,
        "the refused reconnect left no gap: the test did not test it"
    );
    // Published before the subscription could come back, yet arrived
    // within a second of it coming back.
    let missed_then: Vec<u64> = acked
        .iter()
        .filter(|(_, _, at)| *at < restored)
        .map(|(_, o, _)| *o)
        .collect();
    let worst = missed_then
        .iter()
        .map(|o| c.arrived[*o as usize - 1].saturating_duration_since(restored))
        .max()
        .unwrap();
    eprintln!(
        "CLIENT KILL TYPE pubsub: {last} messages, contiguous; the refused reconnect: {filled} filled from the history, all there {worst:?} after Redis took connections again"
    );
    assert!(
        worst < Duration::from_secs(1),
        "the gap took {worst:?} to fill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_for_5_s_every_acknowledged_publish_arrives_once_in_order() {
    // Redis as one runs it to keep acknowledged writes: every write on disk.
    let redis = Redis::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let a = Node::redis(&redis, config()).await;
    let b = Node::redis(&redis, config()).await;
    let mut c = Client::join(&a, "/k", "").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let p = publisher(
        b.fanout.clone(),
        "/k",
        Duration::from_millis(10),
        stop.clone(),
    );
    c.wait_for(30).await;
    let redis = Arc::new(redis);
    let r = redis.clone();
    let kill = tokio::task::spawn_blocking(move || r.kill9(Duration::from_secs(5)));
    // Read on while Redis is away and comes back.
    let t = Instant::now();
    while !kill.is_finished() {
        c.until(Duration::from_millis(100), |_| false).await;
        assert!(t.elapsed() < Duration::from_secs(30));
    }
    kill.await.unwrap();
    c.until(Duration::from_secs(2), |_| false).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, errors) = p.await.unwrap();
    let last = acked.last().unwrap().1;
    c.wait_for(last as usize).await;
    c.until(Duration::from_millis(300), |_| false).await;
    // One epoch (the data survived), every acknowledged offset once, in
    // order; the publishes that failed were told so.
    assert!(
        acked.iter().all(|(e, _, _)| *e == acked[0].0),
        "the epoch changed"
    );
    assert_contiguous(&c.offsets(), 1, last);
    let acked_offsets: Vec<u64> = acked.iter().map(|(_, o, _)| *o).collect();
    assert_contiguous(&acked_offsets, 1, last);
    assert!(errors > 0, "no publish failed: Redis was not down");
    eprintln!(
        "Redis SIGKILLed for 5 s: {} publishes acknowledged, all delivered once in order; {errors} failed with a retryable error; node a: {} gaps, {} filled, {} lost",
        acked.len(),
        a.fanout.metrics().gaps.get(),
        a.fanout.metrics().gap_filled.get(),
        a.fanout.metrics().gap_lost.get()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_during_a_publishing_burst_sees_no_gap_and_no_duplicate() {
    let redis = Redis::start(&[]);
    let a = Node::redis(&redis, config()).await;
    let b = Node::redis(&redis, config()).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let p = publisher(b.fanout.clone(), "/burst", Duration::ZERO, stop.clone());
    let p2 = publisher(a.fanout.clone(), "/burst", Duration::ZERO, stop.clone());
    let mut joined = Vec::new();
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let node = if i % 2 == 0 { &a } else { &b };
        joined.push(Client::join(node, "/burst", "").await);
    }
    // One that resumes mid-burst from a position it saw.
    joined[0].wait_for(1).await;
    let at = joined[0].resume_query();
    joined.push(Client::join(&a, "/burst", &at).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked1, _) = p.await.unwrap();
    let (acked2, _) = p2.await.unwrap();
    let last = acked1
        .iter()
        .chain(&acked2)
        .map(|(_, o, _)| *o)
        .max()
        .unwrap();
    for (i, c) in joined.iter_mut().enumerate() {
        assert!(
            c.until(WAIT, |c| c.offsets().last() == Some(&last)).await,
            "client {i}"
        );
        let offsets = c.offsets();
        assert_contiguous(&offsets, offsets[0], last);
        if let wsx_fanout::ServerMsg::Subscribed { offset, .. } = c.subscribed.as_ref().unwrap() {
            if c.recovery().0 == "fresh" {
                assert_eq!(
                    offsets[0],
                    offset + 1,
                    "client {i}: the first live message follows the head it was told"
                );
            }
        }
    }
    eprintln!("burst: {last} messages; 11 joins mid-burst, each contiguous from its start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_publish_with_its_key_is_not_published_twice() {
    let redis = Redis::start(&[]);
    let a = Node::redis(&redis, config()).await;
    let b = Node::redis(&redis, config()).await;
    let mut c = Client::join(&a, "/i", "").await;
    let first = a
        .fanout
        .publish("/i", text("pay 10".into()), Some("order-7"))
        .await
        .unwrap();
    // The retry, from another node.
    let again = b
        .fanout
        .publish("/i", text("pay 10".into()), Some("order-7"))
        .await
        .unwrap();
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(first.position, again.position);
    // Through the wire too: the client's own publish with a key, twice.
    c.publish("hello", Some("k2")).await;
    c.publish("hello", Some("k2")).await;
    assert!(c.until(WAIT, |c| c.acks.len() == 2).await);
    publish_n(&a.fanout, "/i", 0, 1).await;
    c.wait_for(3).await;
    c.until(Duration::from_millis(200), |_| false).await;
    let texts: Vec<&str> = c.got.iter().map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(texts, ["pay 10", "hello", "m0"]);
    let dups: Vec<bool> = c
        .acks
        .iter()
        .map(|a| {
            matches!(
                a,
                wsx_fanout::ServerMsg::Ack {
                    duplicate: true,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(dups, [false, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_publishes_fail_plainly_and_local_clients_stay() {
    let redis = Redis::start(&[]);
    let a = Node::redis(&redis, config()).await;
    let mut env = Client::join(&a, "/o", "").await;
    let req = wsx::client::ClientRequest::new(&format!("ws://{}/o", a.addr)).unwrap();
    let (mut plain, _) = wsx::client::connect_with(&req, &wsx::client::ClientConfig::default())
        .await
        .unwrap();
    assert!(redis_stop(&redis));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a.fanout.metrics().backend_up.get(),
        0,
        "/metrics says Redis is down"
    );
    // An enveloped client is told, with a retryable error, and stays.
    env.publish("lost?", Some("k9")).await;
    assert!(env.until(WAIT, |c| !c.errors.is_empty()).await);
    match &env.errors[0] {
        wsx_fanout::ServerMsg::Error {
            message,
            retryable,
            key,
        } => {
            assert!(
                *retryable && message.contains("Redis") && key.as_deref() == Some("k9"),
                "{message}"
            );
        }
        _ => unreachable!(),
    }
    assert!(env.closed.is_none());
    // A bare client cannot be told in band: closed with 1013 and why.
    plain.send(wsx::Message::text("lost?")).await.unwrap();
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match plain.recv().await {
                Ok(Some(_)) => {}
                _ => return plain.close_info().cloned(),
            }
        }
    })
    .await
    .unwrap()
    .expect("a close frame");
    assert_eq!(end.code.0, 1013, "{end:?}");
    assert!(end.reason.contains("not published"), "{}", end.reason);
}

fn redis_stop(redis: &Redis) -> bool {
    std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}/../../scripts/redis.sh'; redis_stop '{}'",
            env!("CARGO_MANIFEST_DIR"),
            redis.dir.display()
        ))
        .status()
        .is_ok_and(|s| s.success())
}
