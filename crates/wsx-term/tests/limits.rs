//! Limits and reaping: sessions and viewers past their caps are refused
//! with a reason; detached sessions are ended and exited ones forgotten
//! after their configured times, and only then.

mod common;

use common::*;
use std::time::Duration;
use tokio::time::Instant;
use wsx_term::TermConfig;

fn alive(pid: u32) -> bool {
    // Signal 0: no signal, only the check that the process exists (a
    // zombie counts as gone: its program has ended).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// Waits up to `within` for `cond`; how long it took.
async fn eventually(within: Duration, cond: impl Fn() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if cond() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_session_is_ended_after_its_ttl_and_not_while_watched() {
    let config = TermConfig::default()
        .detached_ttl(Duration::from_millis(1500))
        .kill_grace(Duration::from_millis(200));
    let srv = start(config).await;
    let watched = srv.terminals.create(&command(&["sleep", "60"])).unwrap();
    let v = attach(srv.addr, watched.id()).await;
    let left = srv.terminals.create(&command(&["sleep", "60"])).unwrap();
    let left_pid = left.info().pid.unwrap();

    // The one nobody watches goes (the reaper ticks every second), its
    // program with it.
    let gone = eventually(Duration::from_secs(5), || {
        srv.terminals.get(left.id()).is_none()
    })
    .await;
    assert!(
        gone.is_some(),
        "a detached session outlived detached_ttl + 3.5 s"
    );
    assert!(
        eventually(Duration::from_secs(3), || !alive(left_pid))
            .await
            .is_some(),
        "the reaped session's program is still running"
    );
    // The watched one stays, however long.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(srv.terminals.get(watched.id()).is_some());
    // Once its viewer leaves, its clock starts.
    drop(v);
    let t = eventually(Duration::from_secs(6), || {
        srv.terminals.get(watched.id()).is_none()
    })
    .await
    .expect("the session was not reaped after its viewer left");
    assert!(
        t >= Duration::from_millis(1400),
        "reaped {t:?} after the viewer left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exited_session_is_listed_until_its_ttl_then_forgotten() {
    let config = TermConfig::default().exited_ttl(Duration::from_millis(1500));
    let srv = start(config).await;
    let s = srv
        .terminals
        .create(&command(&["sh", "-c", "exit 7"]))
        .unwrap();
    let id = s.id().to_string();
    drop(s);
    let h = bearer();
    let path = format!("/api/sessions/{id}");
    // Exited: still there to read how it ended.
    assert!(eventually(Duration::from_secs(5), || srv
        .terminals
        .get(&id)
        .is_some_and(|s| s.is_finished()))
    .await
    .is_some());
    let (status, body) = http(srv.addr, "GET", &path, &[(h.0, &h.1)], "").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""state":"exited""#) && body.contains(r#""code":7"#),
        "{body}"
    );
    // Then gone: 404.
    assert!(
        eventually(Duration::from_secs(5), || srv.terminals.get(&id).is_none())
            .await
            .is_some(),
        "an exited session outlived exited_ttl + 3.5 s"
    );
    let (status, body) = http(srv.addr, "GET", &path, &[(h.0, &h.1)], "").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_viewers_past_their_caps_are_refused_with_a_reason() {
    let srv = start(TermConfig::default().max_sessions(1).max_viewers(1)).await;
    let h = bearer();
    let body = r#"{"command":["sleep","60"]}"#;
    let ct = ("Content-Type", "application/json");
    let origin = format!("http://{}", srv.addr);
    let headers = [(h.0, h.1.as_str()), ct, ("Origin", origin.as_str())];
    let (status, created) = http(srv.addr, "POST", "/api/sessions", &headers, body).await;
    assert_eq!(status, 201, "{created}");
    let (status, refused) = http(srv.addr, "POST", "/api/sessions", &headers, body).await;
    assert_eq!(status, 429, "{refused}");
    assert!(refused.contains("limit"), "{refused}");

    let id = srv.terminals.list()[0].id().to_string();
    let first = attach(srv.addr, &id).await;
    let mut second = attach(srv.addr, &id).await;
    second
        .until(Duration::from_secs(5), |v| v.closed.is_some())
        .await;
    let (code, reason) = second
        .closed
        .clone()
        .expect("the second viewer was not closed");
    assert_eq!(code, 4429, "{reason}");
    assert!(reason.contains("viewers"), "{reason}");
    // The first one is unaffected; when it leaves, there is room again.
    assert!(first.closed.is_none());
    drop(first);
    let ok = eventually(Duration::from_secs(3), || {
        srv.terminals
            .get(&id)
            .is_some_and(|s| s.viewers().is_empty())
    })
    .await;
    assert!(ok.is_some());
    let mut third = attach(srv.addr, &id).await;
    third.settle(Duration::from_millis(300)).await;
    assert!(third.closed.is_none(), "{:?}", third.closed);
}
