//! Terminal sessions with a real PTY and real programs, through the
//! WebSocket and the REST API, as `wsx term` serves them.

mod common;

use common::*;
use std::time::Duration;
use wsx_term::protocol::{close, Role, ServerMsg};
use wsx_term::TermConfig;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_runs_commands_and_resizes_the_pty() {
    let srv = start(TermConfig::default()).await;
    let s = srv.terminals.create(&shell()).unwrap();
    let mut v = attach(srv.addr, s.id()).await;
    assert!(
        v.until(WAIT, |v| v.text().contains("$ ")).await,
        "no prompt: {:?}",
        v.text()
    );
    match &v.msgs[0] {
        ServerMsg::Hello {
            role, cols, rows, ..
        } => {
            assert_eq!((*role, *cols, *rows), (Role::Writer, 80, 24));
        }
        m => panic!("first message: {m:?}"),
    }
    v.type_str("echo hello-$((6*7)); stty size\r").await;
    assert!(
        v.until(WAIT, |v| v.text().contains("hello-42")
            && v.text().contains("24 80"))
            .await,
        "{}",
        v.text()
    );
    v.resize(100, 30).await;
    assert!(
        v.until(WAIT, |v| v.msgs.contains(&ServerMsg::Resize {
            cols: 100,
            rows: 30
        }))
        .await
    );
    v.type_str("stty size\r").await;
    assert!(
        v.until(WAIT, |v| v.text().contains("30 100")).await,
        "{}",
        v.text()
    );
    assert_eq!((s.info().cols, s.info().rows), (100, 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_reattaches_gets_the_same_screen_and_the_scrollback() {
    let srv = start(TermConfig::default()).await;
    let s = srv.terminals.create(&shell()).unwrap();
    // One viewer stays attached all along.
    let mut stayed = attach(srv.addr, s.id()).await;
    let mut first = attach(srv.addr, s.id()).await;
    assert!(first.until(WAIT, |v| v.text().contains("$ ")).await);
    first
        .type_str("seq 1 300; printf '\\033[1;31mred\\033[0m \\033[44mblue-bg\\033[0m\\n'; echo done-$((1+1))\r")
        .await;
    assert!(
        first.until(WAIT, |v| v.text().contains("done-2")).await,
        "{}",
        first.text()
    );
    drop(first); // a reload, or a dropped network
    let mut again = attach(srv.addr, s.id()).await;
    again.settle(Duration::from_millis(300)).await;
    stayed.settle(Duration::from_millis(300)).await;
    assert!(again.text().contains("done-2"), "{}", again.text());
    // Cell for cell (characters, colours, attributes), cursor included.
    let (a, b) = (stayed.screen.screen(), again.screen.screen());
    assert_eq!(a.size(), b.size());
    let (rows, cols) = (a.size().0.get(), a.size().1.get());
    for r in 0..rows {
        for c in 0..cols {
            assert_eq!(
                a.cell(r, c),
                b.cell(r, c),
                "cell {r},{c}\n{}\n---\n{}",
                a.contents(),
                b.contents()
            );
        }
    }
    assert_eq!(a.cursor_position(), b.cursor_position());
    // The earlier lines came back in the scrollback, as the other viewer has them.
    assert!(
        b.scrollback_len() > 250,
        "scrollback {}",
        b.scrollback_len()
    );
    assert_eq!(a.scrollback_len(), b.scrollback_len());
    let mut back = again.screen;
    back.screen_mut().set_scrollback(usize::MAX);
    let top = back.screen().contents();
    assert!(
        top.contains("seq 1 300") && top.contains("\n1\n2\n3\n"),
        "{top}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_viewer_is_refused_input_and_a_ticket_works_once() {
    let srv = start(TermConfig::default()).await;
    let s = srv.terminals.create(&shell()).unwrap();
    let mut writer = attach(srv.addr, s.id()).await;
    assert!(writer.until(WAIT, |v| v.text().contains("$ ")).await);
    let (status, body) = http(
        srv.addr,
        "POST",
        &format!("/api/sessions/{}/tickets", s.id()),
        &[
            (bearer().0, &bearer().1),
            ("Content-Type", "application/json"),
        ],
        r#"{"role":"viewer"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ticket: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_string();
    let mut viewer = try_attach(srv.addr, s.id(), &format!("?ticket={ticket}"))
        .await
        .unwrap();
    assert!(viewer.until(WAIT, |v| !v.msgs.is_empty()).await);
    assert!(
        matches!(
            viewer.msgs[0],
            ServerMsg::Hello {
                role: Role::Viewer,
                ..
            }
        ),
        "{:?}",
        viewer.msgs[0]
    );
    viewer.type_str("echo sneaky\r").await;
    assert!(viewer.until(WAIT, |v| !v.errors().is_empty()).await);
    assert!(
        viewer.errors()[0].contains("read-only"),
        "{:?}",
        viewer.errors()
    );
    viewer.resize(50, 10).await;
    assert!(viewer.until(WAIT, |v| v.errors().len() == 2).await);
    // The writer's terminal never saw it; the writer still types.
    writer.type_str("echo fine\r").await;
    assert!(writer.until(WAIT, |v| v.text().contains("fine\n")).await);
    assert!(!writer.text().contains("sneaky"), "{}", writer.text());
    assert!(viewer.until(WAIT, |v| v.text().contains("fine\n")).await);
    // The ticket is used up: 401 before the upgrade.
    let again = try_attach(srv.addr, s.id(), &format!("?ticket={ticket}")).await;
    let err = again.err().expect("a reused ticket is refused").to_string();
    assert!(err.contains("401"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_viewer_is_told_the_exit_code_before_the_close() {
    let srv = start(TermConfig::default()).await;
    let s = srv.terminals.create(&shell()).unwrap();
    let mut a = attach(srv.addr, s.id()).await;
    let mut b = attach(srv.addr, s.id()).await;
    assert!(a.until(WAIT, |v| v.text().contains("$ ")).await);
    a.type_str("echo bye; exit 3\r").await;
    for v in [&mut a, &mut b] {
        assert!(v.until(WAIT, |v| v.closed.is_some()).await, "{:?}", v.msgs);
        assert_eq!(v.exit(), Some((Some(3), None)), "{:?}", v.msgs);
        assert!(v.text().contains("bye"), "{}", v.text());
        let (code, reason) = v.closed.clone().unwrap();
        assert_eq!(code, 1000);
        assert_eq!(reason, "session exited, code 3");
        // The exit came last, after the output.
        assert!(
            matches!(v.msgs.last(), Some(ServerMsg::Exit { .. })),
            "{:?}",
            v.msgs
        );
    }
    let info = s.info();
    assert_eq!((info.state, info.exit.unwrap().code), ("exited", Some(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_commands_whole_output_arrives_100_of_100_times() {
    let srv = start(TermConfig::default().max_sessions(200)).await;
    let mut complete = 0;
    for i in 0..100 {
        let s = srv
            .terminals
            .create(&command(&["sh", "-c", &format!("seq 1 40; echo end-{i}")]))
            .unwrap();
        let mut v = attach(srv.addr, s.id()).await;
        let ok = v.until(WAIT, |v| v.closed.is_some()).await;
        // Every line, in order, whether it came in the snapshot or as output.
        let text = v.all_text();
        let want: String =
            (1..=40).map(|n| format!("{n}\n")).collect::<String>() + &format!("end-{i}\n");
        if ok && v.exit() == Some((Some(0), None)) && text.contains(&want) {
            complete += 1;
        } else {
            eprintln!("run {i}: {:?} {:?}\n{text}", v.exit(), v.closed);
        }
        srv.terminals.end(s.id());
    }
    assert_eq!(complete, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sessions_missing_tokens_and_other_sites_are_refused() {
    let srv = start(TermConfig::default()).await;
    let s = srv.terminals.create(&shell()).unwrap();
    // No token: 401 before the upgrade.
    let err = try_attach(srv.addr, s.id(), "")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("401"), "{err}");
    let err = try_attach(srv.addr, s.id(), "?token=wrong")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("401"), "{err}");
    // A page on another site (the browser sends its Origin): 403.
    let req = wsx::client::ClientRequest::new(&format!(
        "ws://{}/api/ws/sessions/{}?token={TOKEN}",
        srv.addr,
        s.id()
    ))
    .unwrap()
    .header("Origin", "https://evil.example")
    .unwrap();
    let err = wsx::client::connect_with(&req, &Default::default())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("403"), "{err}");
    // No such session: accepted, then the protocol's close code.
    let mut v = try_attach(srv.addr, "nope", &format!("?token={TOKEN}"))
        .await
        .unwrap();
    assert!(v.until(WAIT, |v| v.closed.is_some()).await);
    assert_eq!(v.closed.unwrap().0, close::NO_SUCH_SESSION);
    // The REST API wants the token too; a state-changing call from another site is refused.
    let (status, _) = http(srv.addr, "GET", "/api/sessions", &[], "").await;
    assert_eq!(status, 401);
    let (status, body) = http(
        srv.addr,
        "GET",
        "/api/sessions",
        &[(bearer().0, &bearer().1)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(s.id()));
    let (status, _) = http(
        srv.addr,
        "DELETE",
        &format!("/api/sessions/{}", s.id()),
        &[
            (bearer().0, &bearer().1),
            ("Origin", "https://evil.example"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 403);
    // The page: without the token 401; with it, a cookie and a redirect that drops it.
    let (status, _) = http(srv.addr, "GET", "/", &[], "").await;
    assert_eq!(status, 401);
    let (status, _) = http(
        srv.addr,
        "GET",
        &format!("/?token={TOKEN}&session=x"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 303);
    let cookie = format!("wsx_term_token={TOKEN}");
    let (status, body) = http(srv.addr, "GET", "/", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("assets/xterm.js"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_reaches_every_viewer_in_order_and_cannot_be_printed() {
    let srv = start(TermConfig::default()).await;
    // The program pushes two states through its channel, then prints the
    // bytes of a third state message to the terminal.
    let script = r#"
        post() { curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $WSX_TERM_STATE_TOKEN" -d "$1" "$WSX_TERM_STATE_URL"; }
        read go
        post '{"step":1}'
        post '{"step":2,"note":"ok"}'
        printf '{"type":"state","seq":9,"state":{"step":666}}\n'
        sleep 30
    "#;
    let s = srv
        .terminals
        .create(&command(&["bash", "-c", script]))
        .unwrap();
    let mut early = attach(srv.addr, s.id()).await;
    early.settle(Duration::from_millis(200)).await;
    early.type_str("go\r").await;
    let states = |v: &Viewer| -> Vec<(u64, serde_json::Value)> {
        v.msgs
            .iter()
            .filter_map(|m| match m {
                ServerMsg::State { seq, state } => Some((*seq, state.clone())),
                _ => None,
            })
            .collect()
    };
    assert!(
        early.until(WAIT, |v| v.text().contains("666")).await,
        "{}",
        early.text()
    );
    early.settle(Duration::from_millis(200)).await;
    let got = states(&early);
    assert_eq!(
        got,
        vec![
            (1, serde_json::json!({"step": 1})),
            (2, serde_json::json!({"step": 2, "note": "ok"}))
        ],
        "{}",
        early.text()
    );
    // A viewer that joins late gets the latest state first.
    let mut late = attach(srv.addr, s.id()).await;
    late.settle(Duration::from_millis(300)).await;
    assert_eq!(
        states(&late),
        vec![(2, serde_json::json!({"step": 2, "note": "ok"}))]
    );
    // Without the session's own token: 401.
    let (status, _) = http(
        srv.addr,
        "POST",
        &format!("/api/sessions/{}/state", s.id()),
        &[(bearer().0, &bearer().1)],
        r#"{"step":3}"#,
    )
    .await;
    assert_eq!(status, 401);
}
