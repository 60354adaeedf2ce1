//! The wire protocol of a terminal session, `wsx.term.v1` (documented in
//! the crate's README section of the project README).
//!
//! - Binary frames carry the terminal: server to client, output bytes (the
//!   PTY's, batched); client to server, input bytes (keys, pastes).
//! - Text frames carry JSON objects with a `type` ([`ServerMsg`],
//!   [`ClientMsg`]).
//! - A session's end is said with [`ServerMsg::Exit`] before the close
//!   (1000); refusals close with codes of their own ([`close`]).

use serde::{Deserialize, Serialize};

/// The subprotocol a client asks for (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "wsx.term.v1";

/// Close codes of the protocol (RFC 6455 §7.4.2: 4000-4999 are private).
pub mod close {
    /// No session has this id (never had, or it was reaped).
    pub const NO_SUCH_SESSION: u16 = 4404;
    /// The credentials do not allow this (e.g. a ticket for another session).
    pub const FORBIDDEN: u16 = 4403;
    /// The session was ended (DELETE, or the server is stopping).
    pub const SESSION_ENDED: u16 = 4410;
    /// The session's viewer limit is reached.
    pub const TOO_MANY_VIEWERS: u16 = 4429;
}

/// What a viewer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Types into the terminal and resizes it.
    Writer,
    /// Watches; input is refused with an [`ServerMsg::Error`].
    Viewer,
}

impl Role {
    /// Parses `writer` or `viewer`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "writer" => Some(Role::Writer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// `writer` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Viewer => "viewer",
        }
    }
}

/// Server to client (text frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First message: who you are in which session.
    Hello {
        /// The protocol version (`wsx.term.v1`).
        protocol: String,
        /// The session's id.
        session: String,
        /// This viewer's id within the session.
        viewer: u64,
        /// This viewer's role.
        role: Role,
        /// The terminal's size.
        cols: u16,
        /// The terminal's size.
        rows: u16,
    },
    /// The next binary frame is the screen, as escape codes. `attach`: the
    /// whole screen with its scrollback; reset the terminal and write it.
    /// `lagged` (the viewer fell behind and the output in between was
    /// skipped): the visible screen, drawn over the old one after scrolling
    /// it into the terminal's scrollback; write it without a reset.
    Snapshot {
        /// The terminal's size the snapshot is drawn for.
        cols: u16,
        /// The terminal's size the snapshot is drawn for.
        rows: u16,
        /// Why: `attach` or `lagged` (output was skipped).
        reason: String,
    },
    /// The terminal was resized (by a writer).
    Resize {
        /// New size.
        cols: u16,
        /// New size.
        rows: u16,
    },
    /// A viewer joined.
    Joined {
        /// Its id.
        viewer: u64,
        /// Its role.
        role: Role,
        /// Viewers now attached.
        viewers: usize,
    },
    /// A viewer left.
    Left {
        /// Its id.
        viewer: u64,
        /// Viewers now attached.
        viewers: usize,
    },
    /// State pushed by the program inside (its own JSON), in order; `seq`
    /// counts from 1 per session. A viewer that attaches gets the latest first.
    State {
        /// Sequence number within the session.
        seq: u64,
        /// The program's JSON value.
        state: serde_json::Value,
    },
    /// The program ended; all its output was sent before this. The close
    /// (1000) follows.
    Exit {
        /// Its exit code, if it exited.
        code: Option<u32>,
        /// The signal that ended it, if one did.
        signal: Option<String>,
    },
    /// A request of this viewer was refused, and why (the connection stays).
    Error {
        /// What was wrong.
        message: String,
    },
}

/// Client to server (text frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Resize the PTY (writers only).
    Resize {
        /// Columns (1..=1000).
        cols: u16,
        /// Rows (1..=500).
        rows: u16,
    },
}

/// The largest terminal accepted, against absurd sizes that would make the
/// server-side screen allocate without bound.
pub const MAX_COLS: u16 = 1000;
/// See [`MAX_COLS`].
pub const MAX_ROWS: u16 = 500;

impl ServerMsg {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("protocol messages serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_documented_shape() {
        let exit = ServerMsg::Exit {
            code: Some(3),
            signal: None,
        };
        assert_eq!(exit.to_json(), r#"{"type":"exit","code":3,"signal":null}"#);
        let m: ClientMsg =
            serde_json::from_str(r#"{"type":"resize","cols":100,"rows":40}"#).unwrap();
        assert_eq!(
            m,
            ClientMsg::Resize {
                cols: 100,
                rows: 40
            }
        );
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"sudo"}"#).is_err());
    }
}
