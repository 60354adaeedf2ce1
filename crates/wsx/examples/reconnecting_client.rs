//! A client that stays connected: [`wsx::reconnect::ReconnectingClient`] reconnects
//! with backoff whenever the connection drops or cannot be made.
//!
//! ```text
//! cargo run -p wsx --example reconnecting_client -- [URL]   (default ws://127.0.0.1:9001/)
//! ```
//! Run it against the `echo_server` example, then stop that server (Ctrl-C)
//! and start it again: the client reports the drop, waits (exponential
//! backoff with jitter), reconnects and carries on. Ctrl-C here closes the
//! connection with 1000 and exits.

use std::time::Duration;
use wsx::{
    client::ClientRequest,
    reconnect::{Backoff, ReconnectConfig, ReconnectEvent, ReconnectingClient},
    CloseCode, CloseFrame, Message,
};

#[tokio::main]
async fn main() -> Result<(), wsx::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or("ws://127.0.0.1:9001/".into());
    let config = ReconnectConfig {
        // At most 10 s between attempts (default 30 s); retry forever.
        backoff: Backoff {
            max: Duration::from_secs(10),
            ..Backoff::default()
        },
        ..ReconnectConfig::default()
    };
    let mut client = ReconnectingClient::connect(ClientRequest::new(&url)?, config);

    // Another task sends a tick every second through a sender handle. While
    // disconnected the message is handed back (`NotSent`): nothing is queued
    // for the next connection, the application decides what to resend.
    let sender = client.sender();
    tokio::spawn(async move {
        for n in 1.. {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match sender.send(Message::text(format!("tick {n}"))).await {
                Ok(()) => {}
                Err(e) if e.is_stopped() => break,
                Err(e) => println!("tick {n} not sent: {e}"),
            }
        }
    });

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut closing = false;
    loop {
        let event = tokio::select! {
            event = client.recv() => event,
            _ = &mut ctrl_c, if !closing => {
                // Close with 1000 and stop reconnecting; the events go on
                // (the last messages, `Disconnected`) until `None`.
                closing = true;
                client.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye"))).await;
                continue;
            }
        };
        let Some(event) = event else { break };
        match event {
            ReconnectEvent::Connected => println!("connected to {url}"),
            // The place to subscribe again and resend what must be resent.
            ReconnectEvent::Reconnected { attempts } => {
                println!("reconnected (attempt {attempts})")
            }
            ReconnectEvent::Message(Message::Text(text)) => println!("received: {text}"),
            ReconnectEvent::Message(_) => {} // binary, and the pings it answers
            ReconnectEvent::Disconnected { cause } => println!("disconnected: {cause}"),
            ReconnectEvent::Reconnecting {
                attempt,
                delay,
                cause,
            } => println!("reconnecting in {delay:.1?} (attempt {attempt}): {cause}"),
            // Only with `Backoff::max_attempts` or a cause the retry policy
            // declines (e.g. 401 or a close with 1008).
            ReconnectEvent::GaveUp { cause } => println!("giving up: {cause}"),
            _ => {}
        }
    }
    Ok(())
}
