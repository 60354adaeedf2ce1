//! `wsx serve --console`: commands typed on stdin, applied to every open
//! echo connection (to test how clients take server-side closes).

use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncBufReadExt, BufReader};
use wsx::CloseFrame;

/// A `--console` command, sent to every echo connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleCmd {
    Close(CloseFrame),
    Drop,
    Ping(Bytes),
    Send(String),
}

const CONSOLE_HELP: &str = "console commands (applied to every open connection):
  /close [CODE [REASON]]   close handshake (default 1000)
  /drop                    drop the TCP connections without a close frame (clients see 1006)
  /ping [DATA]             a ping
  /send TEXT, or TEXT      a text message
  /list                    how many connections are open
  /help                    this list";

/// Parses one console line: `Ok(None)` for commands answered by the console
/// itself (`/list`, `/help`, blank lines).
fn parse_console(line: &str) -> Result<Option<ConsoleCmd>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(cmd) = line.strip_prefix('/') else {
        return Ok(Some(ConsoleCmd::Send(line.to_string())));
    };
    let (word, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let rest = rest.trim_start();
    match word {
        "close" => {
            // Stricter than the REPL: a word where the code goes is a typo,
            // not a reason.
            let first = rest.split_whitespace().next().unwrap_or("");
            if !first.is_empty() && first.parse::<u16>().is_err() {
                return Err(format!(
                    "/close: {first:?} is not a close code (a number such as 1000 or 4001)"
                ));
            }
            crate::parse_close(rest)
                .map(|f| Some(ConsoleCmd::Close(f)))
                .map_err(|e| format!("/close: {e}"))
        }
        "drop" => Ok(Some(ConsoleCmd::Drop)),
        "ping" if rest.len() > 125 => Err(format!(
            "/ping: {} bytes; a ping carries at most 125",
            rest.len()
        )),
        "ping" => Ok(Some(ConsoleCmd::Ping(Bytes::copy_from_slice(
            rest.as_bytes(),
        )))),
        "send" => Ok(Some(ConsoleCmd::Send(rest.to_string()))),
        "list" | "help" => Ok(None),
        _ => Err(format!("unknown command /{word} (/help lists them)")),
    }
}

/// Reads console commands from stdin until it ends.
pub async fn console_loop(open: Gauge, tx: tokio::sync::broadcast::Sender<ConsoleCmd>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                eprintln!("console: cannot read stdin: {e}");
                break;
            }
        };
        match parse_console(&line) {
            Ok(Some(cmd)) => {
                let what = match &cmd {
                    ConsoleCmd::Close(f) => format!("close {} {:?}", f.code.0, f.reason),
                    ConsoleCmd::Drop => "drop".into(),
                    ConsoleCmd::Ping(p) => format!("ping ({} bytes)", p.len()),
                    ConsoleCmd::Send(t) => format!("text ({} bytes)", t.len()),
                };
                let n = tx.send(cmd).unwrap_or(0);
                eprintln!("console: {what} sent to {n} connection(s)");
            }
            Ok(None) if line.trim() == "/help" => eprintln!("{CONSOLE_HELP}"),
            Ok(None) if line.trim().starts_with("/list") => {
                eprintln!("console: {} connection(s) open", open.get())
            }
            Ok(None) => {}
            Err(e) => eprintln!("console: {e}"),
        }
    }
    tracing::debug!("console: stdin closed");
}

/// The next console command; never resolves without a console.
pub async fn next_console(
    rx: &mut Option<tokio::sync::broadcast::Receiver<ConsoleCmd>>,
) -> ConsoleCmd {
    use tokio::sync::broadcast::error::RecvError;
    if let Some(r) = rx {
        loop {
            match r.recv().await {
                Ok(c) => return c,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    }
    *rx = None;
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsx::CloseCode;

    #[test]
    fn console_lines() {
        let close = |c: u16, r: &str| Ok(Some(ConsoleCmd::Close(CloseFrame::new(CloseCode(c), r))));
        assert_eq!(parse_console("/close"), close(1000, ""));
        assert_eq!(parse_console("/close 4001"), close(4001, ""));
        assert_eq!(
            parse_console("/close 4001 bye for now\r"),
            close(4001, "bye for now")
        );
        assert_eq!(parse_console("/drop"), Ok(Some(ConsoleCmd::Drop)));
        assert_eq!(
            parse_console("/ping abc"),
            Ok(Some(ConsoleCmd::Ping(Bytes::from_static(b"abc"))))
        );
        assert_eq!(
            parse_console("/send /not a command"),
            Ok(Some(ConsoleCmd::Send("/not a command".into())))
        );
        assert_eq!(
            parse_console("plain text"),
            Ok(Some(ConsoleCmd::Send("plain text".into())))
        );
        assert_eq!(parse_console("   "), Ok(None));
        assert_eq!(parse_console("/list"), Ok(None));
        for (bad, says) in [
            ("/close 1006", "may not be sent"),
            ("/close abc", "not a close code"),
            ("/close 70000", "not a close code"),
            ("/frobnicate", "unknown command /frobnicate"),
        ] {
            let e = parse_console(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let long = format!("/close 4000 {}", "x".repeat(124));
        assert!(parse_console(&long).unwrap_err().contains("123"));
        assert!(parse_console(&format!("/ping {}", "x".repeat(126)))
            .unwrap_err()
            .contains("125"));
    }
}
