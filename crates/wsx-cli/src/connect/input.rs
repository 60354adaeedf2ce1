//! What the user gives: the items that reach a session, and the thread that
//! reads them from stdin when piped (the REPL is the other source).

use std::collections::VecDeque;
use std::io::BufRead;
use tokio::sync::mpsc;
use wsx::{CloseFrame, Message};

/// What the user asked for.
#[derive(Debug)]
pub(super) enum Input {
    /// A text or binary message.
    Data(Message),
    /// `/ping [data]`.
    Ping(Vec<u8>),
    /// `/close [code] [reason]`.
    Close(CloseFrame),
    /// End of input (EOF, Ctrl-D, Ctrl-C): close with 1000.
    Eof,
}

/// Input from the reading thread, plus what was set aside while reconnecting.
pub(super) struct InputQueue {
    pub(super) rx: mpsc::Receiver<Input>,
    pub(super) pending: VecDeque<Input>,
}

impl InputQueue {
    pub(super) fn new(rx: mpsc::Receiver<Input>) -> Self {
        InputQueue {
            rx,
            pending: VecDeque::new(),
        }
    }

    /// The next item; `Eof` once the reading thread is gone. Cancel safe.
    pub(super) async fn next(&mut self) -> Input {
        if let Some(i) = self.pending.pop_front() {
            return i;
        }
        self.rx.recv().await.unwrap_or(Input::Eof)
    }
}

/// Reads stdin on a blocking thread: one message per line (without its
/// `\n` or `\r\n`), or per NUL-terminated record; then `Eof`.
pub(super) fn spawn_stdin_reader(tx: mpsc::Sender<Input>, null: bool, binary: bool) {
    std::thread::spawn(move || {
        let delim = if null { b'\0' } else { b'\n' };
        let stdin = std::io::stdin();
        let mut r = stdin.lock();
        let mut warned = false;
        loop {
            let mut buf = Vec::new();
            match r.read_until(delim, &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    if buf.last() == Some(&delim) {
                        buf.pop();
                        if !null && buf.last() == Some(&b'\r') {
                            buf.pop();
                        }
                    }
                    let msg = record_message(buf, binary, &mut warned);
                    if tx.blocking_send(Input::Data(msg)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("wsx: cannot read stdin: {e}");
                    break;
                }
            }
        }
        let _ = tx.blocking_send(Input::Eof);
    });
}

/// One record as a message: text unless `--binary` or not UTF-8 (said once,
/// the first time: `warned`).
fn record_message(buf: Vec<u8>, binary: bool, warned: &mut bool) -> Message {
    if binary {
        return Message::binary(buf);
    }
    match String::from_utf8(buf) {
        Ok(s) => Message::text(s),
        Err(e) => {
            if !*warned {
                *warned = true;
                eprintln!("wsx: warning: input is not valid UTF-8, which a text message must be; sending such records as binary messages (--binary sends every record as binary)");
            }
            Message::binary(e.into_bytes())
        }
    }
}
