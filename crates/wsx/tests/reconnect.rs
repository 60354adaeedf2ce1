//! `ReconnectingClient` against scripted servers on loopback, on tokio's
//! paused clock: backoff delays are asserted exactly, without sleeping.
//!
//! With the clock paused, tokio jumps to the next timer whenever every task
//! is idle. Loopback I/O is ready as soon as it is written, so the only
//! jumps are the client's backoff sleeps and the servers' own sleeps; the
//! connect and handshake timeouts are an hour so that a stray jump would be
//! glaring rather than silently absorbed.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wsx::{
    client::{ClientConfig, ClientRequest},
    reconnect::{
        Backoff, Decision, Disconnect, GiveUpReason, Jitter, ReconnectConfig, ReconnectEvent,
        ReconnectingClient, RetryPolicy,
    },
    CloseCode, CloseFrame, Initiator, Message, WebSocket,
};

const HOUR: Duration = Duration::from_secs(3600);
const SEED: u64 = 7;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the server does with each connection, in order.
#[derive(Debug, Clone)]
enum Step {
    /// Reads the request and answers `503 Service Unavailable`.
    Refuse503,
    /// Answers `429 Too Many Requests` with `Retry-After: SECS`.
    Refuse429RetryAfter(&'static str),
    /// Reads the request and answers `403 Forbidden`.
    Refuse403,
    /// Accepts TCP and drops it at once (the handshake sees EOF).
    Hangup,
    /// Completes the handshake, sends `n` text messages "0".."n-1", then
    /// closes with `code` after `after` (answering pings meanwhile).
    Serve {
        n: usize,
        after: Duration,
        code: u16,
    },
    /// As `Serve`, but ends TCP without a close frame (the client sees 1006).
    ServeThenVanish { n: usize },
    /// Completes the handshake and echoes until the client closes; reports
    /// the client's close code.
    Echo,
}

fn serve(n: usize, code: u16) -> Step {
    Step::Serve {
        n,
        after: Duration::ZERO,
        code,
    }
}

/// What the server saw: when each connection arrived, and close codes the
/// `Echo` step received.
struct Server {
    accepted: mpsc::UnboundedReceiver<Instant>,
    client_close: mpsc::UnboundedReceiver<Option<CloseCode>>,
}

/// Starts a server running `script`, one step per connection; after the
/// script the listener closes (connects are refused).
async fn server(script: Vec<Step>) -> (ClientRequest, Server) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/feed", listener.local_addr().unwrap());
    let (accepted_tx, accepted) = mpsc::unbounded_channel();
    let (close_tx, client_close) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for step in script {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = accepted_tx.send(Instant::now());
            let close_tx = close_tx.clone();
            // Each connection in its own task, as a real server would: a
            // held connection does not delay the next accept.
            tokio::spawn(run_step(tcp, step, close_tx));
        }
    });
    (
        ClientRequest::new(&url).unwrap(),
        Server {
            accepted,
            client_close,
        },
    )
}

async fn run_step(tcp: TcpStream, step: Step, close_tx: mpsc::UnboundedSender<Option<CloseCode>>) {
    match step {
        Step::Refuse503 => refuse(tcp, "503 Service Unavailable").await,
        Step::Refuse429RetryAfter(secs) => {
            refuse(
                tcp,
                &format!("429 Too Many Requests\r\nRetry-After: {secs}"),
            )
            .await
        }
        Step::Refuse403 => refuse(tcp, "403 Forbidden").await,
        Step::Hangup => drop(tcp),
        Step::Serve { n, after, code } => {
            let mut ws = quiet_accept(tcp).await;
            send_numbers(&mut ws, n).await;
            let _ =
                tokio::time::timeout(after, async { while let Ok(Some(_)) = ws.recv().await {} })
                    .await;
            ws.close(Some(CloseFrame::new(CloseCode(code), "bye")))
                .await
                .unwrap();
            while let Ok(Some(_)) = ws.recv().await {}
        }
        Step::ServeThenVanish { n } => {
            let mut ws = quiet_accept(tcp).await;
            send_numbers(&mut ws, n).await;
            drop(ws);
        }
        Step::Echo => {
            let mut ws = quiet_accept(tcp).await;
            while let Ok(Some(msg)) = ws.recv().await {
                if matches!(msg, Message::Text(_) | Message::Binary(_)) {
                    let _ = ws.send(msg).await;
                }
            }
            let _ = close_tx.send(ws.close_info().map(|c| c.code));
        }
    }
}

async fn refuse(mut tcp: TcpStream, status: &str) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "client hung up before its request was complete");
        head.extend_from_slice(&buf[..n]);
    }
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    tcp.write_all(answer.as_bytes()).await.unwrap();
}

async fn send_numbers(ws: &mut WebSocket<TcpStream>, n: usize) {
    for i in 0..n {
        ws.feed(Message::text(i.to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
}

fn backoff() -> Backoff {
    Backoff {
        initial: ms(100),
        max: ms(1000),
        multiplier: 2.0,
        reset_after: Duration::from_secs(30),
        max_attempts: None,
    }
}

fn config() -> ReconnectConfig {
    ReconnectConfig {
        client: ClientConfig::default()
            .connect_timeout(HOUR)
            .handshake_timeout(HOUR),
        backoff: backoff(),
        jitter_seed: Some(SEED),
        ..ReconnectConfig::default()
    }
}

/// The next event; fails the test if none comes within an hour of
/// (virtual) time.
async fn next(client: &mut ReconnectingClient) -> ReconnectEvent {
    match tokio::time::timeout(HOUR, client.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("the client stopped"),
        Err(_) => panic!("no event within an hour"),
    }
}

async fn expect_end(client: &mut ReconnectingClient) {
    match tokio::time::timeout(HOUR, client.recv()).await {
        Ok(None) => {}
        Ok(Some(ev)) => panic!("expected the end, got {ev:?}"),
        Err(_) => panic!("the client did not stop"),
    }
}

#[track_caller]
fn assert_reconnecting(ev: &ReconnectEvent, want_attempt: u32) -> (Duration, Disconnect) {
    match ev {
        ReconnectEvent::Reconnecting {
            attempt,
            delay,
            cause,
        } => {
            assert_eq!(*attempt, want_attempt, "{ev:?}");
            (*delay, cause.clone())
        }
        other => panic!("expected Reconnecting {{ attempt: {want_attempt} }}, got {other:?}"),
    }
}

#[track_caller]
fn assert_disconnected(ev: &ReconnectEvent, code: u16) {
    match ev {
        ReconnectEvent::Disconnected { cause } => {
            assert_eq!(cause.close_code(), Some(CloseCode(code)), "{cause}")
        }
        other => panic!("expected Disconnected with {code}, got {other:?}"),
    }
}

#[track_caller]
fn assert_gave_up(ev: &ReconnectEvent, code: u16) {
    match ev {
        ReconnectEvent::GaveUp { cause } => {
            assert_eq!(cause.close_code(), Some(CloseCode(code)), "{cause}")
        }
        other => panic!("expected GaveUp with {code}, got {other:?}"),
    }
}

#[track_caller]
fn assert_text(ev: &ReconnectEvent, want: &str) {
    match ev {
        ReconnectEvent::Message(Message::Text(t)) => assert_eq!(&**t, want),
        other => panic!("expected text {want:?}, got {other:?}"),
    }
}

// ---- backoff -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn reconnect_backoff_intervals_follow_the_policy() {
    // Six failed attempts (refused and hung up, alternately), then a
    // connection that the server ends normally.
    let mut script = Vec::new();
    for i in 0..6 {
        script.push(if i % 2 == 0 {
            Step::Refuse503
        } else {
            Step::Hangup
        });
    }
    script.push(serve(0, 1000));
    let (req, mut server) = server(script).await;
    let mut client = ReconnectingClient::connect(req, config());

    let policy = backoff();
    let mut jitter = Jitter::new(SEED);
    let mut delays = Vec::new();
    for attempt in 1..=6u32 {
        let (delay, cause) = assert_reconnecting(&next(&mut client).await, attempt);
        let ceiling = policy.ceiling(attempt);
        assert_eq!(
            delay,
            policy.delay(attempt, jitter.next_unit()),
            "attempt {attempt}: not the policy's delay for seed {SEED}"
        );
        assert!(
            delay <= ceiling,
            "attempt {attempt}: {delay:?} above {ceiling:?}"
        );
        assert!(cause.is_transient(), "{cause}");
        let e = cause.error().expect("a connect failure");
        if attempt % 2 == 1 {
            let status = e
                .client_handshake()
                .and_then(|h| match h {
                    wsx::wsx_proto::handshake::ClientHandshakeError::Rejected(r) => Some(r.status),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("expected a 503 rejection, got {e}"));
            assert_eq!(status.as_u16(), 503);
        }
        delays.push(delay);
    }
    // The ceiling doubles and stops at the cap.
    let ceilings: Vec<_> = (1..=6).map(|a| policy.ceiling(a)).collect();
    assert_eq!(
        ceilings,
        [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
    );
    // Jitter: the delays are not simply the ceilings.
    assert!(delays.iter().zip(&ceilings).any(|(d, c)| d < c));

    // The first connection that succeeds is the first one: Connected.
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    // 1000 from the server: done, no retry.
    assert_disconnected(&next(&mut client).await, 1000);
    assert_gave_up(&next(&mut client).await, 1000);
    expect_end(&mut client).await;

    // The server saw each attempt after exactly the announced delay (the
    // timer wheel rounds up to the next millisecond).
    let mut at = Vec::new();
    while let Ok(t) = server.accepted.try_recv() {
        at.push(t);
    }
    assert_eq!(at.len(), 7);
    for (i, delay) in delays.iter().enumerate() {
        let waited = at[i + 1] - at[i];
        assert!(
            waited >= *delay && waited <= *delay + ms(1),
            "attempt {}: waited {waited:?}, announced {delay:?}",
            i + 1
        );
    }
}

/// The task decides nothing itself: every `Reconnecting` and the final
/// `GaveUp` are what a `Schedule` built from the same config answers when
/// fed the same ends (with how long each connection lived) and failures.
#[tokio::test(start_paused = true)]
async fn the_client_follows_the_schedule_of_its_config() {
    let long = Duration::from_secs(45);
    let (req, _server) = server(vec![
        Step::Serve {
            n: 0,
            after: long,
            code: 1012,
        },
        Step::Refuse503,
        Step::Refuse429RetryAfter("3"),
        Step::Hangup,
        serve(0, 1001),
        Step::Serve {
            n: 0,
            after: long,
            code: 1011,
        },
        serve(0, 1013),
        Step::Refuse403,
    ])
    .await;
    let cfg = config();
    let mut twin = cfg.schedule();
    let mut client = ReconnectingClient::connect(req, cfg);
    // How long the current connection has been up, and how it ended.
    let mut up: Option<Instant> = None;
    let mut ended: Option<(Disconnect, Duration)> = None;
    let mut decisions = Vec::new();
    loop {
        match next(&mut client).await {
            ReconnectEvent::Connected | ReconnectEvent::Reconnected { .. } => {
                up = Some(Instant::now())
            }
            ReconnectEvent::Disconnected { cause } => {
                ended = Some((cause, up.take().expect("was up").elapsed()))
            }
            ReconnectEvent::Reconnecting {
                attempt,
                delay,
                cause,
            } => {
                let want = match ended.take() {
                    Some((end, lived)) => {
                        assert_eq!(end.close_code(), cause.close_code());
                        twin.on_end(&cause, lived)
                    }
                    None => twin.on_connect_error(&cause),
                };
                assert_eq!(Decision::Retry { attempt, delay }, want, "{cause}");
                decisions.push(want);
            }
            ReconnectEvent::GaveUp { cause } => {
                assert!(ended.is_none(), "the 403 is a failed attempt");
                assert_eq!(
                    twin.on_connect_error(&cause),
                    Decision::GiveUp {
                        reason: GiveUpReason::Permanent
                    }
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    expect_end(&mut client).await;
    // 1012 after 45 s: attempt 1; 503, 429 (at least 3 s), hangup: 2, 3, 4;
    // up and 1001 at once: 5; up 45 s, 1011: 1 again; 1013 at once: 2.
    let attempts: Vec<u32> = decisions
        .iter()
        .map(|d| match d {
            Decision::Retry { attempt, .. } => *attempt,
            Decision::GiveUp { .. } => unreachable!(),
        })
        .collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5, 1, 2]);
    assert!(
        matches!(decisions[2], Decision::Retry { delay, .. } if delay >= Duration::from_secs(3))
    );
}

#[tokio::test(start_paused = true)]
async fn a_stable_connection_resets_the_attempt_count() {
    let (req, _server) = server(vec![
        serve(0, 1012),
        serve(0, 1012),
        // Stays up past reset_after (30 s), then drops.
        Step::Serve {
            n: 0,
            after: Duration::from_secs(31),
            code: 1012,
        },
        serve(0, 1012),
    ])
    .await;
    let mut client = ReconnectingClient::connect(req, config());
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    assert_disconnected(&next(&mut client).await, 1012);
    assert_reconnecting(&next(&mut client).await, 1);
    assert!(matches!(
        next(&mut client).await,
        ReconnectEvent::Reconnected { attempts: 1 }
    ));
    // Short-lived: the count goes on.
    assert_disconnected(&next(&mut client).await, 1012);
    assert_reconnecting(&next(&mut client).await, 2);
    assert!(matches!(
        next(&mut client).await,
        ReconnectEvent::Reconnected { attempts: 2 }
    ));
    let up = Instant::now();
    assert_disconnected(&next(&mut client).await, 1012);
    assert!(
        up.elapsed() >= Duration::from_secs(30),
        "{:?}",
        up.elapsed()
    );
    // Lived 31 s: back to attempt 1, with attempt 1's ceiling.
    let (delay, _) = assert_reconnecting(&next(&mut client).await, 1);
    assert!(delay <= backoff().ceiling(1), "{delay:?}");
    assert!(matches!(
        next(&mut client).await,
        ReconnectEvent::Reconnected { attempts: 1 }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_slow_application_does_not_make_a_short_connection_stable() {
    let (req, _server) = server(vec![serve(0, 1012), serve(1, 1012), serve(0, 1012)]).await;
    let mut cfg = config();
    cfg.event_capacity = 1;
    let mut client = ReconnectingClient::connect(req, cfg);
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    assert_disconnected(&next(&mut client).await, 1012);
    assert_reconnecting(&next(&mut client).await, 1);
    assert!(matches!(
        next(&mut client).await,
        ReconnectEvent::Reconnected { attempts: 1 }
    ));
    // The connection ends at once, but its last message sits unread for
    // longer than reset_after, holding up `Disconnected`.
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert_text(&next(&mut client).await, "0");
    assert_disconnected(&next(&mut client).await, 1012);
    assert_reconnecting(&next(&mut client).await, 2);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_then_gives_up() {
    let (req, _server) = server(vec![Step::Hangup, Step::Hangup, Step::Hangup]).await;
    let mut cfg = config();
    cfg.backoff.max_attempts = Some(2);
    let mut client = ReconnectingClient::connect(req, cfg);
    assert_reconnecting(&next(&mut client).await, 1);
    assert_reconnecting(&next(&mut client).await, 2);
    match next(&mut client).await {
        ReconnectEvent::GaveUp { cause } => assert!(cause.is_transient(), "{cause}"),
        other => panic!("expected GaveUp, got {other:?}"),
    }
    expect_end(&mut client).await;
}

// ---- the retry policy -------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn no_retry_on_policy_violation_by_default() {
    for code in [1008, 1002] {
        let (req, mut server) = server(vec![serve(0, code), serve(0, 1000)]).await;
        let mut client = ReconnectingClient::connect(req, config());
        assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
        assert_disconnected(&next(&mut client).await, code);
        assert_gave_up(&next(&mut client).await, code);
        expect_end(&mut client).await;
        assert!(server.accepted.recv().await.is_some());
        assert!(
            server.accepted.try_recv().is_err(),
            "{code}: reconnected anyway"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retry_on_policy_violation_when_the_application_says_so() {
    let (req, _server) = server(vec![serve(0, 1008), serve(0, 1000)]).await;
    let mut cfg = config();
    cfg.retry = RetryPolicy::new(|d| {
        d.is_transient() || d.close_code() == Some(CloseCode::POLICY_VIOLATION)
    });
    let mut client = ReconnectingClient::connect(req, cfg);
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    assert_disconnected(&next(&mut client).await, 1008);
    let (_, cause) = assert_reconnecting(&next(&mut client).await, 1);
    assert_eq!(cause.close_code(), Some(CloseCode::POLICY_VIOLATION));
    assert!(matches!(
        next(&mut client).await,
        ReconnectEvent::Reconnected { attempts: 1 }
    ));
    assert_disconnected(&next(&mut client).await, 1000);
    assert_gave_up(&next(&mut client).await, 1000);
}

#[tokio::test(start_paused = true)]
async fn retry_on_going_away_and_service_restart() {
    let (req, _server) = server(vec![serve(0, 1001), serve(0, 1012), serve(0, 1000)]).await;
    let mut client = ReconnectingClient::connect(req, config());
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    assert_disconnected(&next(&mut client).await, 1001);
    assert_reconnecting(&next(&mut client).await, 1);
    assert!(matches!(
        next(&mut client).await,
        ReconnectEvent::Reconnected { attempts: 1 }
    ));
    assert_disconnected(&next(&mut client).await, 1012);
    assert_reconnecting(&next(&mut client).await, 2);
    assert!(matches!(
        next(&mut client).await,
        ReconnectEvent::Reconnected { attempts: 2 }
    ));
    assert_disconnected(&next(&mut client).await, 1000);
    assert_gave_up(&next(&mut client).await, 1000);
}

#[tokio::test(start_paused = true)]
async fn handshake_refused_with_403_is_not_retried() {
    let (req, _server) = server(vec![Step::Refuse403, serve(0, 1000)]).await;
    let mut client = ReconnectingClient::connect(req, config());
    match next(&mut client).await {
        ReconnectEvent::GaveUp { cause } => {
            assert!(!cause.is_transient());
            assert!(cause.to_string().contains("403"), "{cause}");
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
    expect_end(&mut client).await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_up_to_the_cap() {
    let (req, mut server) = server(vec![
        Step::Refuse429RetryAfter("7"),
        Step::Refuse429RetryAfter("99999999999999999999999"),
        Step::Refuse429RetryAfter("Wed, 21 Oct 2065 07:28:00 GMT"),
        serve(0, 1000),
    ])
    .await;
    let mut client = ReconnectingClient::connect(req, config());
    // The backoff alone would wait at most 200 ms, 400 ms, 800 ms.
    let (delay, cause) = assert_reconnecting(&next(&mut client).await, 1);
    assert_eq!(cause.retry_after(), Some(Duration::from_secs(7)));
    assert!(delay >= Duration::from_secs(7), "{delay:?}");
    let (delay, _) = assert_reconnecting(&next(&mut client).await, 2);
    assert_eq!(delay, wsx::reconnect::MAX_RETRY_AFTER, "capped");
    let (delay, cause) = assert_reconnecting(&next(&mut client).await, 3);
    assert_eq!(cause.retry_after(), None, "HTTP dates are not honoured");
    assert!(delay <= ms(800), "{delay:?}");
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    // The server saw the attempts that far apart.
    let t: Vec<Instant> = (0..4)
        .map(|_| server.accepted.try_recv().unwrap())
        .collect();
    assert!(t[1] - t[0] >= Duration::from_secs(7));
    assert!(t[2] - t[1] >= wsx::reconnect::MAX_RETRY_AFTER);
}

// ---- no lost messages, no stale sends ----------------------------------------------

#[tokio::test(start_paused = true)]
async fn messages_before_a_close_are_all_delivered_before_disconnected() {
    let (req, _server) = server(vec![
        serve(200, 1001),
        Step::ServeThenVanish { n: 200 },
        serve(0, 1000),
    ])
    .await;
    // One event at a time: the client must wait for the application at
    // every message, and still lose none.
    let mut cfg = config();
    cfg.event_capacity = 1;
    let mut client = ReconnectingClient::connect(req, cfg);
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    for i in 0..200 {
        assert_text(&next(&mut client).await, &i.to_string());
        // A slow application.
        tokio::time::sleep(ms(10)).await;
    }
    assert_disconnected(&next(&mut client).await, 1001);
    assert_reconnecting(&next(&mut client).await, 1);
    assert!(matches!(
        next(&mut client).await,
        ReconnectEvent::Reconnected { .. }
    ));
    for i in 0..200 {
        assert_text(&next(&mut client).await, &i.to_string());
    }
    // No close frame: 1006, after every message.
    assert_disconnected(&next(&mut client).await, 1006);
    assert_reconnecting(&next(&mut client).await, 2);
}

#[tokio::test(start_paused = true)]
async fn send_while_disconnected_hands_the_message_back() {
    let (req, _server) = server(vec![serve(0, 1012)]).await;
    let mut cfg = config();
    // A long wait before reconnecting, so that the send below falls in it.
    cfg.backoff.initial = Duration::from_secs(600);
    cfg.backoff.max = Duration::from_secs(600);
    let mut client = ReconnectingClient::connect(req, cfg);
    let sender = client.sender();
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    assert_disconnected(&next(&mut client).await, 1012);
    assert_reconnecting(&next(&mut client).await, 1);
    let err = sender.send(Message::text("stale")).await.unwrap_err();
    assert!(err.is_disconnected(), "{err}");
    assert!(err.to_string().contains("not connected"), "{err}");
    assert_eq!(err.into_message(), Message::text("stale"));
    // Nor is it sent later: the server script ends here, so the next
    // attempt is refused and the client goes on retrying; close it.
    client.close(None).await;
    expect_end(&mut client).await;
}

#[tokio::test(start_paused = true)]
async fn send_while_connected_then_close() {
    let (req, mut server) = server(vec![Step::Echo]).await;
    let mut client = ReconnectingClient::connect(req, config());
    let sender = client.sender();
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    sender.send(Message::text("one")).await.unwrap();
    client.send(Message::text("two")).await.unwrap();
    assert_text(&next(&mut client).await, "one");
    assert_text(&next(&mut client).await, "two");

    client
        .close(Some(CloseFrame::new(CloseCode::NORMAL, "done")))
        .await;
    match next(&mut client).await {
        ReconnectEvent::Disconnected {
            cause: Disconnect::Closed(c),
        } => {
            assert_eq!(c.initiator, Initiator::Local);
            assert!(c.is_clean(), "{c:?}");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // Closed by the application: no reconnect, no GaveUp.
    expect_end(&mut client).await;
    assert_eq!(
        server.client_close.recv().await.unwrap(),
        Some(CloseCode::NORMAL)
    );
    let err = sender.send(Message::text("three")).await.unwrap_err();
    assert!(err.is_stopped(), "{err}");
    assert_eq!(err.into_message(), Message::text("three"));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_client_closes_with_going_away() {
    let (req, mut server) = server(vec![Step::Echo]).await;
    let mut client = ReconnectingClient::connect(req, config());
    assert!(matches!(next(&mut client).await, ReconnectEvent::Connected));
    drop(client);
    assert_eq!(
        server.client_close.recv().await.unwrap(),
        Some(CloseCode::GOING_AWAY)
    );
}

/// `wsx::accept` without the server's default keepalive, so the scripted
/// servers send only what each step says.
async fn quiet_accept(tcp: tokio::net::TcpStream) -> wsx::WebSocket<tokio::net::TcpStream> {
    let config = wsx::ServerConfig::default()
        .limits(wsx::Config::builder().ping_interval(None).build().unwrap());
    wsx::server::accept_with(tcp, &config, |_| Ok(Default::default()))
        .await
        .unwrap()
}
