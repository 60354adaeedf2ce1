//! Sessions one after another: with `--reconnect`, the library's
//! [`Schedule`] decides whether and when to connect again after a session
//! ends; the input set aside meanwhile goes out on the next connection.

use super::exit::{describe_end, exit_code, report, EXIT_FAILURE};
use super::input::{Input, InputQueue};
use super::opts::Opts;
use super::output::Out;
use super::session::{session, End};
use std::future::Future;
use std::time::Duration;
use wsx::{
    reconnect::{Backoff, Decision, Disconnect, GiveUpReason, Jitter, RetryPolicy, Schedule},
    MaybeTlsStream, WebSocket,
};

/// The reconnect decisions of `--reconnect`: the library's [`Schedule`]
/// (its default retry policy, `Retry-After`, `--max-attempts`), with a
/// shorter reset than the library's 30 s.
fn reconnect_schedule(opts: &Opts) -> Schedule {
    let backoff = Backoff {
        // An interactive tool: a connection that held for 10 s was a real
        // session, and the user would rather not wait half a minute.
        reset_after: Duration::from_secs(10),
        max_attempts: opts.max_attempts,
        ..Backoff::default()
    };
    Schedule::new(backoff, RetryPolicy::default(), Jitter::from_entropy())
}

/// Runs sessions until one ends for good (reconnecting in between with
/// `--reconnect`, as its [`Schedule`] decides); returns the exit code.
pub(super) async fn drive(
    ws: WebSocket<MaybeTlsStream>,
    req: &wsx::client::ClientRequest,
    config: &wsx::client::ClientConfig,
    input: &mut InputQueue,
    out: &Out,
    opts: &Opts,
) -> u8 {
    let mut ws = ws;
    let mut schedule = reconnect_schedule(opts);
    loop {
        let outcome = session(ws, input, out, opts).await;
        // We closed, or stdout went away: not a question for the policy.
        let ours = outcome.quitting || matches!(outcome.end, End::OutputClosed);
        if !opts.reconnect || ours {
            report(&outcome, out, opts);
            return exit_code(&outcome, opts);
        }
        let decision = schedule.on_end(&disconnect(&outcome.end), outcome.lasted);
        if let Decision::GiveUp { reason } = decision {
            report(&outcome, out, opts);
            if reason != GiveUpReason::Permanent {
                give_up(reason, out);
            }
            return exit_code(&outcome, opts);
        }
        out.info(&format!(
            "wsx: connection lost: {}",
            describe_end(&outcome.end)
        ));
        ws = match reconnect(decision, &mut schedule, req, config, input, out).await {
            Ok(ws) => ws,
            Err(Stop::GaveUp) => return EXIT_FAILURE,
            Err(Stop::Quit) => return exit_code(&outcome, opts),
        };
    }
}

/// Why [`reconnect`] brought no connection.
enum Stop {
    /// The schedule gave up (said on `out`).
    GaveUp,
    /// The user quit while waiting (on a terminal).
    Quit,
}

/// Waits and connects again, as often as the schedule allows.
async fn reconnect(
    mut decision: Decision,
    schedule: &mut Schedule,
    req: &wsx::client::ClientRequest,
    config: &wsx::client::ClientConfig,
    input: &mut InputQueue,
    out: &Out,
) -> Result<WebSocket<MaybeTlsStream>, Stop> {
    loop {
        let delay = match decision {
            Decision::Retry { attempt, delay } => {
                out.info(&format!(
                    "wsx: reconnecting in {:.1} s (attempt {attempt})",
                    delay.as_secs_f64()
                ));
                delay
            }
            Decision::GiveUp { reason } => {
                give_up(reason, out);
                return Err(Stop::GaveUp);
            }
        };
        if or_quit(tokio::time::sleep(delay), input, out.interactive())
            .await
            .is_none()
        {
            return Err(Stop::Quit);
        }
        let Some(result) = or_quit(
            wsx::client::connect_with(req, config),
            input,
            out.interactive(),
        )
        .await
        else {
            return Err(Stop::Quit);
        };
        match result {
            Ok((ws, _)) => {
                out.info("wsx: reconnected");
                return Ok(ws);
            }
            Err(e) => {
                let cause = Disconnect::from(e);
                out.info(&format!("wsx: {cause}"));
                decision = schedule.on_connect_error(&cause);
            }
        }
    }
}

/// Says why `--reconnect` stopped, and what would make it go on.
fn give_up(reason: GiveUpReason, out: &Out) {
    let hint = match reason {
        GiveUpReason::MaxAttempts { .. } => {
            "raise --max-attempts, or leave it out to retry as long as the failures look transient"
        }
        // A refused handshake, a bad URL, a protocol error: the message
        // above names it.
        _ => "another attempt would fail the same way; fix the cause above and run again",
    };
    out.info(&format!("wsx: not reconnecting: {reason} ({hint})"));
}

/// Runs `fut`; on a terminal, gives up (None) if the user quits meanwhile.
/// Other input is kept for the next connection.
async fn or_quit<T>(
    fut: impl Future<Output = T>,
    input: &mut InputQueue,
    interactive: bool,
) -> Option<T> {
    if !interactive {
        return Some(fut.await);
    }
    tokio::pin!(fut);
    loop {
        tokio::select! {
            v = &mut fut => return Some(v),
            item = input.rx.recv() => match item {
                None | Some(Input::Eof | Input::Close(_)) => return None,
                Some(other) => input.pending.push_back(other),
            },
        }
    }
}

/// The end as the reconnect policy sees it (not for `OutputClosed`,
/// which never reconnects).
fn disconnect(end: &End) -> Disconnect {
    match end {
        End::Closed(c) => Disconnect::Closed(c.clone()),
        End::Io(e) => match e.close_info() {
            Some(c) => Disconnect::Closed(c.clone()),
            None => Disconnect::Error(e.clone()),
        },
        // An end without `Closed` is not expected: a lost connection.
        End::Gone | End::OutputClosed => Disconnect::from(wsx::Error::from(std::io::Error::from(
            std::io::ErrorKind::UnexpectedEof,
        ))),
    }
}
