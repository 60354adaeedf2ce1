//! `wsx connect` end to end: the binary against `wsx serve` and against
//! small servers written here with the `wsx` library; the REPL in a real
//! pseudo-terminal.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsx::{CloseCode, CloseFrame, Message};

mod common;

use common::{free_port, WSX};

/// `wsx serve`: echoes every message.
fn echo_server() -> common::Server {
    common::serve(&[])
}
const WAIT: Duration = Duration::from_secs(15);

// ---- servers --------------------------------------------------------------------

/// A server on its own thread and runtime: `handler(n, tcp)` runs for the
/// n-th connection (from 0). Returns the port.
fn server<F, Fut>(handler: F) -> u16
where
    F: Fn(usize, tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let mut n = 0;
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(handler(n, tcp));
                n += 1;
            }
        });
    });
    port
}

/// Reads until the client's close (answering it) or the end.
async fn drain(ws: &mut wsx::WebSocket<tokio::net::TcpStream>) {
    while let Ok(Some(_)) = ws.recv().await {}
}

async fn echo(mut ws: wsx::WebSocket<tokio::net::TcpStream>) {
    while let Ok(Some(m)) = ws.recv().await {
        if matches!(m, Message::Text(_) | Message::Binary(_)) && ws.send(m).await.is_err() {
            return;
        }
    }
}

// ---- the client -----------------------------------------------------------------

/// Runs `wsx connect ARGS` with `stdin` (then EOF); returns (exit code,
/// stdout, stderr).
fn run(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut c = Client::spawn(args);
    c.write(stdin);
    c.close_stdin();
    c.finish()
}

/// A running `wsx connect` with piped stdio, stdout read line by line.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stdout_rest: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Client {
    fn spawn(args: &[&str]) -> Client {
        let mut child = Command::new(WSX)
            .arg("connect")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wsx connect");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout_rest = Arc::new(Mutex::new(String::new()));
        let rest = stdout_rest.clone();
        let err = Arc::new(Mutex::new(String::new()));
        let err2 = err.clone();
        let readers = vec![
            std::thread::spawn(move || {
                let mut r = BufReader::new(stdout);
                loop {
                    let mut line = String::new();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            rest.lock().unwrap().push_str(&line);
                            let _ = tx.send(line);
                        }
                    }
                }
            }),
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = stderr.read_to_string(&mut s);
                err2.lock().unwrap().push_str(&s);
            }),
        ];
        Client {
            stdin: child.stdin.take(),
            child,
            lines,
            stdout_rest,
            stderr: err,
            readers,
        }
    }

    fn write(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn next_line(&self) -> String {
        self.lines.recv_timeout(WAIT).unwrap_or_else(|_| {
            let err = self.stderr.lock().unwrap().clone();
            panic!("no output line; stderr: {err}")
        })
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let err = self.stderr.lock().unwrap().clone();
                panic!("wsx connect did not exit; stderr: {err}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit; (code, all of stdout, stderr).
    fn finish(mut self) -> (i32, String, String) {
        let status = self.wait();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let out = self.stdout_rest.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), out, err)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- piping ---------------------------------------------------------------------

#[test]
fn lines_go_out_and_replies_come_back_one_per_line() {
    let s = echo_server();
    let (code, out, err) = run(&[&s.url()], "hello\nwörld\r\n\nlast".as_bytes());
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "hello\nwörld\n\nlast\n");
}

#[test]
fn null_delimited_records_in_and_out() {
    let s = echo_server();
    let (code, out, err) = run(&["-0", &s.url()], b"a b\nc\0d\0");
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "a b\nc\0d\0");
}

#[test]
fn binary_messages_print_as_hex_or_base64() {
    let s = echo_server();
    let (code, out, err) = run(&["--binary", &s.url()], b"hi\n\xff\x00\n");
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "6869\nff00\n");
    let (code, out, err) = run(
        &["--binary", "--binary-format", "base64", &s.url()],
        b"hi\n",
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "aGk=\n");
}

#[test]
fn json_messages_are_pretty_printed_and_other_text_is_not() {
    let s = echo_server();
    let (code, out, err) = run(
        &["--json", &s.url()],
        b"{\"z\":1,\"a\":[true,null],\"e\":{}}\nnot json\n",
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(
        out,
        "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    null\n  ],\n  \"e\": {}\n}\nnot json\n"
    );
}

#[test]
fn once_sends_all_of_stdin_then_prints_only_the_first_reply() {
    let port = server(|_, tcp| async move {
        let mut ws = wsx::accept(tcp).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            match ws.recv().await {
                Ok(Some(Message::Text(t))) => got.push(t.to_string()),
                Ok(Some(_)) => {}
                _ => return,
            }
        }
        let _ = ws
            .send(Message::text(format!("got {}", got.join(","))))
            .await;
        let _ = ws.send(Message::text("a second reply")).await;
        drain(&mut ws).await;
    });
    let (code, out, err) = run(
        &["--once", &format!("ws://127.0.0.1:{port}/")],
        b"first\nsecond\n",
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "got first,second\n");
}

/// A server that answers each message 300 ms later, but answers a close at
/// once (as Python `websockets` does): replies still in the making are lost.
fn slow_echo_server() -> u16 {
    server(|_, tcp| async move {
        let ws = wsx::accept(tcp).await.unwrap();
        let (mut rx, tx) = ws.split();
        let tx = Arc::new(tokio::sync::Mutex::new(tx));
        while let Ok(Some(m)) = rx.recv().await {
            if let Message::Text(t) = m {
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let _ = tx
                        .lock()
                        .await
                        .send(Message::text(format!("late {t}")))
                        .await;
                });
            }
        }
    })
}

#[test]
fn end_of_input_waits_for_late_replies_before_closing() {
    let port = slow_echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    // By default the close waits until the replies stop: the reply 300 ms
    // late arrives, then 0.25 s of quiet (one sent, one received).
    let (code, out, err) = run(&["-v", &url], b"hi\n");
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "late hi\n");
    assert!(
        err.contains(
            "wsx: end of input: closing after 0.25 s without messages (1 sent, 1 received)"
        ),
        "{err}"
    );
    assert!(
        err.contains("wsx: closed: sent 1000, the server answered 1000"),
        "{err}"
    );
    // --wait 0 closes at once, and this server drops the reply in the
    // making: what the default avoids.
    let (code, out, err) = run(&["--wait", "0", &url], b"hi\n");
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "", "the reply should have missed the close");
    // --wait SECS waits that long, whatever arrives.
    let started = Instant::now();
    let (code, out, err) = run(&["--wait", "1", &url], b"hi\n");
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "late hi\n");
    assert!(started.elapsed() >= Duration::from_secs(1));
    let (code, _, err) = run(&["--wait=-1", &url], b"");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("0 or more"), "{err}");
}

#[test]
fn end_of_input_against_a_silent_server_closes_after_one_quiet_second() {
    let (tx, closes) = mpsc::channel::<Option<u16>>();
    let tx = Mutex::new(tx);
    let port = server(move |_, tcp| {
        let tx = tx.lock().unwrap().clone();
        async move {
            // Reads everything, answers nothing, reports the client's close.
            let mut ws = wsx::accept(tcp).await.unwrap();
            drain(&mut ws).await;
            let _ = tx.send(ws.close_info().map(|c| c.code.0));
        }
    });
    let started = Instant::now();
    let (code, out, err) = run(&["-v", &format!("ws://127.0.0.1:{port}/")], b"a\nb\n");
    let took = started.elapsed();
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "");
    assert!(
        err.contains("closing after 1 s without messages (2 sent, 0 received)"),
        "{err}"
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(closes.recv_timeout(WAIT).unwrap(), Some(1000));
}

#[test]
fn end_of_input_waits_while_a_reply_keeps_coming() {
    // Two replies per message, the second 600 ms after the first: more
    // than the 0.25 s quiet of an answered connection, but the first reply
    // of the second message is still missing until then.
    let port = server(|_, tcp| async move {
        let mut ws = wsx::accept(tcp).await.unwrap();
        let mut got = 0;
        while let Ok(Some(m)) = ws.recv().await {
            if let Message::Text(t) = m {
                got += 1;
                if got == 2 {
                    let _ = ws.send(Message::text(format!("first {t}"))).await;
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    let _ = ws.send(Message::text("second")).await;
                }
            }
        }
    });
    let (code, out, err) = run(&["-v", &format!("ws://127.0.0.1:{port}/")], b"x\ny\n");
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "first y\nsecond\n");
    assert!(err.contains("(2 sent, 2 received)"), "{err}");
}

// ---- the request ----------------------------------------------------------------

/// A server that reports what the handshake carried, then closes with 1000.
fn header_reporting_server() -> u16 {
    server(|_, tcp| async move {
        let seen = Arc::new(Mutex::new(String::new()));
        let seen2 = seen.clone();
        let config = wsx::ServerConfig::default().origin(wsx::server::OriginPolicy::allow_any());
        let ws = wsx::server::accept_with(tcp, &config, move |up| {
            let h = |n: &str| {
                up.headers()
                    .get_all(n)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_string())
                    .collect::<Vec<_>>()
                    .join("|")
            };
            *seen2.lock().unwrap() = format!(
                "x-test={} x-other={} origin={} auth={} offered={}",
                h("x-test"),
                h("x-other"),
                h("origin"),
                h("authorization"),
                up.protocols().join(",")
            );
            Ok(wsx::server::Accept {
                protocol: up.protocols().last().cloned(),
                ..Default::default()
            })
        })
        .await;
        let Ok(mut ws) = ws else { return };
        let report = format!(
            "{} selected={}",
            seen.lock().unwrap(),
            ws.protocol().unwrap_or("-")
        );
        let _ = ws.send(Message::text(report)).await;
        let _ = ws.close(Some(CloseFrame::new(CloseCode::NORMAL, ""))).await;
        drain(&mut ws).await;
    })
}

#[test]
fn headers_origin_subprotocols_and_auth_reach_the_server() {
    let port = header_reporting_server();
    let c = Client::spawn(&[
        "-H",
        "X-Test: 42",
        "--header",
        "X-Other:  spaced value ",
        "--origin",
        "https://app.example",
        "--subprotocol",
        "chat.v1",
        "--subprotocol",
        "chat.v2",
        "--auth",
        "user:pa:ss",
        // --auth replaces the URL's credentials.
        &format!("ws://ignored:creds@127.0.0.1:{port}/"),
    ]);
    let line = c.next_line();
    assert_eq!(
        line,
        "x-test=42 x-other=spaced value origin=https://app.example auth=Basic dXNlcjpwYTpzcw== offered=chat.v1,chat.v2 selected=chat.v2\n"
    );
    let (code, _, err) = c.finish();
    assert_eq!(code, 0, "the server closed with 1000; stderr: {err}");
}

#[test]
fn url_credentials_become_basic_auth() {
    let port = header_reporting_server();
    let c = Client::spawn(&[&format!("ws://alice:secret@127.0.0.1:{port}/")]);
    let line = c.next_line();
    assert!(line.contains("auth=Basic YWxpY2U6c2VjcmV0 "), "{line}");
    assert!(line.contains("origin= "), "no Origin unless asked: {line}");
    let (code, _, err) = c.finish();
    assert_eq!(code, 0, "stderr: {err}");
}

// ---- exit codes -----------------------------------------------------------------

#[test]
fn the_servers_close_code_decides_the_exit_code() {
    for (close, want) in [(4000u16, 1), (1011, 1), (1001, 1), (1000, 0)] {
        let port = server(move |_, tcp| async move {
            let mut ws = wsx::accept(tcp).await.unwrap();
            let _ = ws.send(Message::text("before the close")).await;
            let _ = ws
                .close(Some(CloseFrame::new(CloseCode(close), "server says so")))
                .await;
            drain(&mut ws).await;
        });
        // stdin stays open: the server is the one that closes.
        let c = Client::spawn(&[&format!("ws://127.0.0.1:{port}/")]);
        assert_eq!(c.next_line(), "before the close\n");
        let (code, _, err) = c.finish();
        assert_eq!(code, want, "close {close}: stderr: {err}");
        if want != 0 {
            assert!(err.contains(&close.to_string()), "{err}");
            assert!(err.contains("server says so"), "{err}");
        }
    }
}

#[test]
fn connection_refused_exits_2_and_says_why() {
    let (code, out, err) = run(&[&format!("ws://127.0.0.1:{}/", free_port())], b"");
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("nothing is listening"), "{err}");
}

#[test]
fn a_refused_handshake_exits_2_with_the_status_and_a_hint() {
    let port = server(|_, tcp| async move {
        let _ = wsx::server::accept_with(tcp, &wsx::ServerConfig::default(), |_| {
            Err(wsx::server::HandshakeError::rejected(
                http::StatusCode::FORBIDDEN,
                "token required",
            ))
        })
        .await;
    });
    let (code, _, err) = run(&[&format!("ws://127.0.0.1:{port}/")], b"hello\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("403"), "{err}");
    assert!(err.contains("authentication"), "{err}");
    assert!(err.contains("token required"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = run(&["-H", "no colon", "ws://127.0.0.1:1/"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("'Name: value'"), "{err}");
    let (code, _, err) = run(&["--auth", "nopassword", "ws://127.0.0.1:1/"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("USER:PASS"), "{err}");
    let (code, _, _) = run(&["--once", "--reconnect", "ws://127.0.0.1:1/"], b"");
    assert_eq!(code, 2);
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(WSX)
        .args(["connect", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Exit codes:"), "{text}");
    for flag in [
        "--reconnect",
        "--once",
        "--null",
        "--binary-format",
        "--json",
    ] {
        assert!(text.contains(flag), "{flag} missing: {text}");
    }
}

#[test]
fn show_ping_reports_the_servers_pings_on_stderr() {
    let port = server(|_, tcp| async move {
        let mut ws = wsx::accept(tcp).await.unwrap();
        let _ = ws.send(Message::Ping("are you there".into())).await;
        let _ = ws.send(Message::text("data")).await;
        let _ = ws.close(Some(CloseFrame::new(CloseCode::NORMAL, ""))).await;
        drain(&mut ws).await;
    });
    let c = Client::spawn(&["--show-ping", &format!("ws://127.0.0.1:{port}/")]);
    assert_eq!(c.next_line(), "data\n");
    let (code, out, err) = c.finish();
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "data\n", "pings never go to stdout");
    assert!(err.contains("< ping are you there"), "{err}");
}

#[test]
fn eof_waits_for_the_servers_close_at_most_close_timeout() {
    let port = server(|_, tcp| async move {
        // Accept, then never read: our close frame goes unanswered.
        let _ws = wsx::accept(tcp).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let started = Instant::now();
    let (code, _, err) = run(
        &["--close-timeout", "0.5", &format!("ws://127.0.0.1:{port}/")],
        b"hello\n",
    );
    let took = started.elapsed();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did not answer the close frame"), "{err}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

// ---- reconnecting ---------------------------------------------------------------

#[test]
fn reconnect_after_an_abrupt_drop_and_carry_on() {
    let (tx, connected) = mpsc::channel::<usize>();
    let tx = Mutex::new(tx);
    let port = server(move |n, tcp| {
        let tx = tx.lock().unwrap().clone();
        async move {
            let ws = wsx::accept(tcp).await.unwrap();
            if n == 0 {
                // Vanish: TCP ends without a close frame (1006).
                drop(ws);
                return;
            }
            let _ = tx.send(n);
            echo(ws).await;
        }
    });
    let mut c = Client::spawn(&["--reconnect", &format!("ws://127.0.0.1:{port}/")]);
    let n = connected.recv_timeout(WAIT).unwrap_or_else(|_| {
        let err = c.stderr.lock().unwrap().clone();
        panic!("no reconnect; stderr: {err}")
    });
    assert_eq!(n, 1);
    c.write(b"after the drop\n");
    assert_eq!(c.next_line(), "after the drop\n");
    c.close_stdin();
    let (code, _, err) = c.finish();
    assert_eq!(code, 0, "stderr: {err}");
    assert!(err.contains("connection lost"), "{err}");
    assert!(err.contains("1006"), "{err}");
    assert!(err.contains("wsx: reconnecting in "), "{err}");
    assert!(err.contains(" s (attempt 1)"), "{err}");
    assert!(err.contains("reconnected"), "{err}");
}

#[test]
fn reconnect_waits_as_long_as_retry_after_asks() {
    let (tx, arrived) = mpsc::channel::<(usize, Instant)>();
    let tx = Mutex::new(tx);
    let port = server(move |n, mut tcp| {
        let tx = tx.lock().unwrap().clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tx.send((n, Instant::now()));
            match n {
                0 => drop(wsx::accept(tcp).await.unwrap()),
                1 => {
                    let mut buf = [0u8; 4096];
                    let _ = tcp.read(&mut buf).await;
                    let _ = tcp
                        .write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\n\
                              Content-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                }
                _ => echo(wsx::accept(tcp).await.unwrap()).await,
            }
        }
    });
    let mut c = Client::spawn(&["--reconnect", &format!("ws://127.0.0.1:{port}/")]);
    let at: Vec<Instant> = (0..3)
        .map(|k| {
            let (n, t) = arrived.recv_timeout(WAIT).unwrap_or_else(|_| {
                let err = c.stderr.lock().unwrap().clone();
                panic!("connection {k} did not come; stderr: {err}")
            });
            assert_eq!(n, k);
            t
        })
        .collect();
    // Without Retry-After the second attempt waits at most 1 s.
    assert!(
        at[2] - at[1] >= Duration::from_millis(1990),
        "{:?}",
        at[2] - at[1]
    );
    c.write(b"back\n");
    assert_eq!(c.next_line(), "back\n");
    c.close_stdin();
    let (code, _, err) = c.finish();
    assert_eq!(code, 0, "stderr: {err}");
    assert!(err.contains("503"), "{err}");
    assert!(err.contains("reconnecting in 2.0 s (attempt 2)"), "{err}");
}

#[test]
fn reconnect_gives_up_after_max_attempts() {
    let (tx, arrived) = mpsc::channel::<usize>();
    let tx = Mutex::new(tx);
    let port = server(move |n, mut tcp| {
        let tx = tx.lock().unwrap().clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tx.send(n);
            if n == 0 {
                // Up, then gone without a close frame (1006): transient.
                drop(wsx::accept(tcp).await.unwrap());
                return;
            }
            // Every reconnect: 503, which is worth another try.
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp
                .write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\
                      Connection: close\r\n\r\n",
                )
                .await;
        }
    });
    let c = Client::spawn(&[
        "--reconnect",
        "--max-attempts",
        "2",
        &format!("ws://127.0.0.1:{port}/"),
    ]);
    let (code, _, err) = c.finish();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("(attempt 1)"), "{err}");
    assert!(err.contains("(attempt 2)"), "{err}");
    assert!(!err.contains("(attempt 3)"), "{err}");
    assert!(err.contains("503"), "{err}");
    assert!(
        err.contains("wsx: not reconnecting: all 2 reconnect attempts allowed were made (raise --max-attempts"),
        "{err}"
    );
    let seen: Vec<usize> = arrived.try_iter().collect();
    assert_eq!(seen, [0, 1, 2], "one connection and two attempts");
}

#[test]
fn reconnect_stops_at_a_refusal_that_would_repeat() {
    let port = server(move |n, tcp| async move {
        if n == 0 {
            drop(wsx::accept(tcp).await.unwrap());
            return;
        }
        let _ = wsx::server::accept_with(tcp, &wsx::ServerConfig::default(), |_| {
            Err(wsx::server::HandshakeError::rejected(
                http::StatusCode::FORBIDDEN,
                "token expired",
            ))
        })
        .await;
    });
    let c = Client::spawn(&["--reconnect", &format!("ws://127.0.0.1:{port}/")]);
    let (code, _, err) = c.finish();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("403"), "{err}");
    assert!(err.contains("token expired"), "{err}");
    assert!(
        err.contains("wsx: not reconnecting: the retry policy treats the cause as permanent (another attempt would fail the same way"),
        "{err}"
    );
    assert!(!err.contains("(attempt 2)"), "{err}");
}

#[test]
fn max_attempts_needs_reconnect_and_a_positive_count() {
    let (code, _, err) = run(&["--max-attempts", "3", "ws://127.0.0.1:1/"], b"");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--reconnect"), "{err}");
    let (code, _, err) = run(
        &["--reconnect", "--max-attempts", "0", "ws://127.0.0.1:1/"],
        b"",
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn without_reconnect_a_drop_exits_2() {
    let port = server(|_, tcp| async move {
        drop(wsx::accept(tcp).await.unwrap());
    });
    let c = Client::spawn(&[&format!("ws://127.0.0.1:{port}/")]);
    let (code, _, err) = c.finish();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1006"), "{err}");
}

// ---- the REPL, in a pseudo-terminal ---------------------------------------------

#[cfg(unix)]
mod repl {
    use super::*;
    use nix::pty::{openpty, Winsize};
    use nix::sys::termios::{tcgetattr, LocalFlags};
    use std::fs::File;
    use std::os::fd::OwnedFd;

    /// `wsx connect` on the slave side of a pty; the test types into the
    /// master and reads the screen bytes from it.
    struct Terminal {
        child: Child,
        master: File,
        slave: OwnedFd,
        screen: Arc<Mutex<Vec<u8>>>,
    }

    impl Terminal {
        fn spawn(args: &[&str]) -> Terminal {
            let size = Winsize {
                ws_row: 40,
                ws_col: 120,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let pty = openpty(Some(&size), None).expect("openpty");
            let child = Command::new(WSX)
                .arg("connect")
                .args(args)
                .env("TERM", "xterm")
                .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
                .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
                .stderr(Stdio::from(pty.slave.try_clone().unwrap()))
                .spawn()
                .expect("spawn wsx connect");
            let master = File::from(pty.master);
            let mut reader = master.try_clone().unwrap();
            let screen = Arc::new(Mutex::new(Vec::new()));
            let s = screen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    s.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            Terminal {
                child,
                master,
                slave: pty.slave,
                screen,
            }
        }

        fn screen(&self) -> String {
            String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
        }

        /// Waits until the output (from byte `from`) contains `needle`;
        /// returns where it ends.
        fn expect(&self, from: usize, needle: &str) -> usize {
            let deadline = Instant::now() + WAIT;
            loop {
                {
                    let s = self.screen.lock().unwrap();
                    let hay = &s[from.min(s.len())..];
                    if let Some(i) = hay
                        .windows(needle.len())
                        .position(|w| w == needle.as_bytes())
                    {
                        return from + i + needle.len();
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "{needle:?} did not appear; screen: {:?}",
                    self.screen()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        fn type_line(&mut self, line: &str) {
            self.master.write_all(line.as_bytes()).unwrap();
            self.master.write_all(b"\r").unwrap();
            self.master.flush().unwrap();
        }

        fn wait(&mut self) -> ExitStatus {
            let deadline = Instant::now() + WAIT;
            loop {
                if let Some(s) = self.child.try_wait().unwrap() {
                    return s;
                }
                assert!(
                    Instant::now() < deadline,
                    "wsx connect did not exit; screen: {:?}",
                    self.screen()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        /// The terminal is back in its normal (canonical, echoing) mode.
        fn is_cooked(&self) -> bool {
            let t = tcgetattr(&self.slave).unwrap();
            t.local_flags
                .contains(LocalFlags::ICANON | LocalFlags::ECHO)
        }
    }

    impl Drop for Terminal {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn type_messages_ping_and_close() {
        let s = echo_server();
        let mut t = Terminal::spawn(&[&s.url()]);
        let at = t.expect(0, "connected to ws://127.0.0.1:");
        let at = t.expect(at, "> ");
        t.type_line("hello over a tty");
        let at = t.expect(at, "< hello over a tty");
        t.type_line("/binary 68 69");
        let at = t.expect(at, "read as hex");
        let at = t.expect(at, "< [binary 2 bytes] 6869");
        t.type_line("/binary aGk=");
        let at = t.expect(at, "read as base64");
        let at = t.expect(at, "< [binary 2 bytes] 6869");
        t.type_line("/ping hi");
        let at = t.expect(at, "< pong hi (");
        let at = t.expect(at, " ms)");
        t.type_line("/nope");
        let at = t.expect(at, "unknown command /nope");
        t.type_line("/close 4000 bye");
        t.expect(at, "closed: 4000");
        let status = t.wait();
        assert_eq!(
            status.code(),
            Some(0),
            "our own close; screen: {:?}",
            t.screen()
        );
        assert!(t.is_cooked(), "terminal left in raw mode");
    }

    #[test]
    fn the_server_closing_ends_the_session_and_restores_the_terminal() {
        let port = server(|_, tcp| async move {
            let mut ws = wsx::accept(tcp).await.unwrap();
            let _ = ws.send(Message::text("welcome")).await;
            // Close once the client asks for it.
            while let Ok(Some(m)) = ws.recv().await {
                if matches!(&m, Message::Text(t) if t == "please close") {
                    break;
                }
            }
            let _ = ws
                .close(Some(CloseFrame::new(CloseCode(4001), "as you wish")))
                .await;
            drain(&mut ws).await;
        });
        let mut t = Terminal::spawn(&["--json", &format!("ws://127.0.0.1:{port}/")]);
        let at = t.expect(0, "< welcome");
        std::thread::sleep(Duration::from_millis(100));
        t.type_line("please close");
        t.expect(at, "closed: 4001 as you wish");
        let status = t.wait();
        assert_eq!(status.code(), Some(1), "closed by the server with 4001");
        assert!(t.is_cooked(), "terminal left in raw mode");
    }
}

#[test]
fn deflate_is_offered_unless_turned_off() {
    let server = echo_server();
    let url = server.url();
    let (code, out, err) = run(&["-v", &url], b"{\"a\":1}\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "{\"a\":1}\n");
    assert!(err.contains("permessage-deflate"), "{err}");
    let (code, out, err) = run(
        &["-v", "--no-deflate", "--deflate-level", "1", &url],
        b"x\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "x\n");
    assert!(!err.contains("permessage-deflate"), "{err}");
    let (code, _, err) = run(&["--deflate-level", "10", &url], b"");
    assert_eq!(code, 2, "{err}");
}
