//! How the run ended: the exit code, and the last words about it (the
//! close codes, or what broke).

use super::opts::Opts;
use super::output::Out;
use super::session::{End, Outcome};
use wsx::{reconnect::Disconnect, CloseCause, Closed, Initiator};

/// Exit code: normal close.
const EXIT_OK: u8 = 0;
/// Exit code: the peer closed with an error code.
const EXIT_PEER_ERROR: u8 = 1;
/// Exit code: usage, connection or handshake error.
pub(super) const EXIT_FAILURE: u8 = 2;

pub(super) fn exit_code(o: &Outcome, opts: &Opts) -> u8 {
    if opts.once && o.replied {
        return EXIT_OK;
    }
    match &o.end {
        End::OutputClosed => EXIT_OK,
        End::Io(_) | End::Gone => EXIT_FAILURE,
        End::Closed(c) => match (&c.cause, c.initiator) {
            (None, Initiator::Local) => EXIT_OK,
            (None, Initiator::Remote) if matches!(c.code.0, 1000 | 1005) => EXIT_OK,
            (None, Initiator::Remote) => EXIT_PEER_ERROR,
            (Some(CloseCause::Protocol(_)), _) => EXIT_PEER_ERROR,
            (Some(_), _) => EXIT_FAILURE,
        },
    }
}

pub(super) fn describe_end(end: &End) -> String {
    match end {
        // The library's words for it, as `ReconnectingClient` reports it.
        End::Closed(c) => Disconnect::Closed(c.clone()).to_string(),
        End::Io(e) => e.to_string(),
        End::Gone => "the connection ended".into(),
        End::OutputClosed => "stdout was closed".into(),
    }
}

/// Says how the session ended: always on a terminal (`closed: CODE
/// REASON`); when piped, on stderr unless it was a normal close (with `-v`,
/// that too: both close codes).
pub(super) fn report(o: &Outcome, out: &Out, opts: &Opts) {
    if out.interactive() {
        let line = match &o.end {
            End::Closed(c) => match &c.cause {
                None => {
                    // The server's reply often carries no reason: show ours.
                    let reason = match (&c.sent, c.initiator) {
                        (Some(sent), Initiator::Local) if c.reason.is_empty() => &sent.reason,
                        _ => &c.reason,
                    };
                    format!("closed: {} {reason}", c.code.0)
                }
                Some(cause) => format!("closed: {} ({cause})", c.code.0),
            },
            other => format!("closed: {}", describe_end(other)),
        };
        out.info(line.trim_end());
        return;
    }
    let normal = match &o.end {
        End::Closed(c) => {
            c.cause.is_none()
                && (c.initiator == Initiator::Local || matches!(c.code.0, 1000 | 1005))
        }
        End::OutputClosed => true,
        _ => false,
    };
    if !normal {
        out.info(&format!("wsx: {}", describe_end(&o.end)));
    } else if opts.verbose {
        if let End::Closed(c) = &o.end {
            out.info(&format!("wsx: {}", describe_clean_close(c)));
        }
    }
}

/// `closed: sent 1000, the server answered 1000`, or `closed by the server
/// with 1000, answered 1000`.
fn describe_clean_close(c: &Closed) -> String {
    let sent = c
        .sent
        .as_ref()
        .map_or_else(|| "no code".to_string(), |f| f.code.0.to_string());
    match c.initiator {
        Initiator::Local => format!("closed: sent {sent}, the server answered {}", c.code.0),
        Initiator::Remote => format!("closed by the server with {}, answered {sent}", c.code.0),
    }
}
