//! The REPL: the line editor on its own thread (history, the external
//! printer that puts messages above the prompt), the `/` commands typed at
//! it, and putting the terminal back at the end.

use super::input::Input;
use super::opts::Opts;
use super::output::{Out, Printer};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use wsx::Message;

/// The line editor on its own thread, and what restores the terminal.
pub(super) struct Repl {
    pub(super) out: Out,
    #[cfg(unix)]
    saved_termios: Option<nix::sys::termios::Termios>,
}

const HELP: &str = "commands:
  /ping [data]            send a ping; its pong is shown with the round-trip time
  /close [code] [reason]  close the connection (default 1000) and exit
  /binary <hex|base64>    send a binary message (hex if it parses as hex, else base64)
  //text                  send a message that starts with '/'
  /help                   this list
  Ctrl-D, Ctrl-C          close normally (1000) and exit
anything else is sent as a text message (binary with --binary)";

impl Repl {
    pub(super) fn start(tx: &mpsc::Sender<Input>, opts: Opts) -> rustyline::Result<Repl> {
        let tx = tx.clone();
        // The editor thread may still be waiting for a key, with the
        // terminal in raw mode, when the connection ends: keep the settings
        // to put back before exiting.
        #[cfg(unix)]
        let saved_termios = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
        let config = rustyline::Config::builder()
            .auto_add_history(false)
            .max_history_size(1000)?
            .history_ignore_dups(true)?
            .build();
        let mut rl = rustyline::DefaultEditor::with_config(config)?;
        let printer: Printer = Arc::new(Mutex::new(Box::new(rl.create_external_printer()?)));
        let out = Out::terminal(printer);
        std::thread::spawn(move || edit_lines(rl, &tx, &opts));
        Ok(Repl {
            out,
            #[cfg(unix)]
            saved_termios,
        })
    }

    /// Puts the terminal back (the editor thread may be stuck in raw mode
    /// waiting for a key) and clears the prompt.
    pub(super) fn finish(self) {
        // Let the editor draw the last lines handed to it.
        std::thread::sleep(Duration::from_millis(50));
        #[cfg(unix)]
        if let Some(t) = &self.saved_termios {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSADRAIN,
                t,
            );
        }
        // Bracketed paste off, then erase the prompt line.
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(b"\x1b[?2004l\r\x1b[2K");
        let _ = o.flush();
    }
}

/// The editor thread: reads lines until the end of input or a close, and
/// hands each command to the session.
fn edit_lines(mut rl: rustyline::DefaultEditor, tx: &mpsc::Sender<Input>, opts: &Opts) {
    use rustyline::error::ReadlineError;
    loop {
        let item = match rl.readline("> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(line.as_str());
                match parse_repl_line(&line, opts) {
                    Ok(Some(item)) => item,
                    Ok(None) => continue,
                    Err(msg) => {
                        println!("{msg}");
                        continue;
                    }
                }
            }
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => Input::Eof,
            Err(e) => {
                eprintln!("wsx: line editor: {e}");
                Input::Eof
            }
        };
        let last = matches!(item, Input::Eof | Input::Close(_));
        // After a close the terminal is left in its normal mode:
        // the editor is not reading any more.
        if tx.blocking_send(item).is_err() || last {
            return;
        }
    }
}

/// One line typed at the prompt: `Ok(None)` when it was handled here (help).
fn parse_repl_line(line: &str, opts: &Opts) -> Result<Option<Input>, String> {
    let data = |s: &str| {
        Input::Data(if opts.binary {
            Message::binary(s.as_bytes().to_vec())
        } else {
            Message::text(s)
        })
    };
    let Some(cmdline) = line.strip_prefix('/') else {
        return Ok(Some(data(line)));
    };
    if cmdline.starts_with('/') {
        return Ok(Some(data(cmdline)));
    }
    let (cmd, rest) = cmdline
        .split_once(char::is_whitespace)
        .unwrap_or((cmdline, ""));
    let rest = rest.trim();
    match cmd {
        "help" | "h" | "?" => {
            println!("{HELP}");
            Ok(None)
        }
        "ping" => {
            if rest.len() > 125 {
                return Err(format!(
                    "a ping carries at most 125 bytes; this one has {}",
                    rest.len()
                ));
            }
            Ok(Some(Input::Ping(rest.as_bytes().to_vec())))
        }
        "close" | "quit" | "exit" => crate::common::parse_close(rest).map(|f| Some(Input::Close(f))),
        "binary" => {
            let (bytes, how) = parse_binary(rest)?;
            println!("[binary {} bytes, read as {how}]", bytes.len());
            Ok(Some(Input::Data(Message::binary(bytes))))
        }
        _ => Err(format!(
            "unknown command /{cmd}; /help lists the commands (//text sends a message starting with '/')"
        )),
    }
}

/// Hex if it parses as hex (whitespace and a `0x` prefix allowed), else base64.
fn parse_binary(arg: &str) -> Result<(Vec<u8>, &'static str), String> {
    let compact: String = arg.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(
            "usage: /binary <hex|base64>, e.g. /binary 68656c6c6f or /binary aGVsbG8=".into(),
        );
    }
    let hex = compact
        .strip_prefix("0x")
        .or_else(|| compact.strip_prefix("0X"))
        .unwrap_or(&compact);
    if hex.len().is_multiple_of(2) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
            .collect();
        return Ok((bytes, "hex"));
    }
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        if let Ok(b) = engine.decode(&compact) {
            return Ok((b, "base64"));
        }
    }
    Err(format!(
        "{arg:?} is neither hex (pairs of 0-9a-f) nor base64"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_argument_is_hex_if_it_can_be() {
        assert_eq!(parse_binary("6869").unwrap(), (b"hi".to_vec(), "hex"));
        assert_eq!(parse_binary("0x68 69").unwrap(), (b"hi".to_vec(), "hex"));
        assert_eq!(parse_binary("aGk=").unwrap(), (b"hi".to_vec(), "base64"));
        assert_eq!(parse_binary("aGk").unwrap(), (b"hi".to_vec(), "base64"));
        assert!(parse_binary("").is_err());
        assert!(parse_binary("not base64!").is_err());
    }
}
