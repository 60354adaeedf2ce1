//! `wsx.pubsub.v1`: what a client that asked for the subprotocol sends and
//! receives, as JSON text frames. Without the subprotocol a client gets the
//! payloads themselves, as they were published.

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wsx::Message;

/// The subprotocol a client asks for to get envelopes and resume.
pub const SUBPROTOCOL: &str = "wsx.pubsub.v1";

/// A published message's content: text or binary, as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// A text message (valid UTF-8); otherwise binary.
    pub text: bool,
    /// Its bytes.
    pub data: Bytes,
}

impl Payload {
    /// From a data message; None for a control message.
    pub fn from_message(msg: &Message) -> Option<Payload> {
        match msg {
            Message::Text(t) => Some(Payload {
                text: true,
                data: t.as_bytes().clone(),
            }),
            Message::Binary(b) => Some(Payload {
                text: false,
                data: b.clone(),
            }),
            _ => None,
        }
    }

    /// As a WebSocket message, for a client without the subprotocol.
    pub fn to_message(&self) -> Message {
        if self.text {
            match wsx::Utf8Bytes::try_from_bytes(self.data.clone()) {
                Ok(t) => Message::Text(t),
                Err(_) => Message::Binary(self.data.clone()),
            }
        } else {
            Message::Binary(self.data.clone())
        }
    }
}

/// Where a message is in its room: the room's epoch (it changes when the
/// room's history is lost) and the message's offset in it (from 1, no gaps).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The room's epoch.
    pub epoch: String,
    /// The offset, from 1.
    pub offset: u64,
}

/// How a joining client's resume went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// It gave no position: live messages from now on.
    Fresh,
    /// The messages it missed follow, `missed` of them, in order.
    Recovered {
        /// How many.
        missed: u64,
    },
    /// What it missed cannot be recovered (too old, or the room's history
    /// was lost: the epoch changed): reload your state, then read on.
    Unrecoverable {
        /// Why, in words.
        reason: String,
    },
}

/// Server to client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMsg {
    /// First, on joining: where the room is and how the resume went; the
    /// missed messages (if recovered) follow, then live ones.
    Subscribed {
        /// The room (the request path).
        room: String,
        /// The room's epoch (null: nothing published yet).
        epoch: Option<String>,
        /// The offset of the room's latest message (0: none yet).
        offset: u64,
        /// `fresh`, `recovered` or `unrecoverable`.
        recovery: String,
        /// Messages that follow from the history.
        missed: u64,
        /// Why it is unrecoverable.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A message of the room.
    Message {
        /// The room's epoch.
        epoch: String,
        /// Its offset.
        offset: u64,
        /// A text message's content.
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// A binary message's content, base64.
        #[serde(skip_serializing_if = "Option::is_none")]
        binary: Option<String>,
    },
    /// A publish from this client went through.
    Ack {
        /// Where it went.
        epoch: String,
        /// Where it went.
        offset: u64,
        /// The idempotency key it carried.
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// It had been published before under this key (a retry).
        duplicate: bool,
    },
    /// A request from this client failed.
    Error {
        /// What went wrong, and what to do.
        message: String,
        /// Trying the same again later may work (the broker is away).
        retryable: bool,
        /// The idempotency key of the publish that failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl ServerMsg {
    /// The message envelope of `payload` at `pos`.
    pub fn message(pos: &Position, payload: &Payload) -> ServerMsg {
        let text = payload
            .text
            .then(|| String::from_utf8_lossy(&payload.data).into_owned());
        let binary = (!payload.text)
            .then(|| base64::engine::general_purpose::STANDARD.encode(&payload.data));
        ServerMsg::Message {
            epoch: pos.epoch.clone(),
            offset: pos.offset,
            text,
            binary,
        }
    }

    /// As a text frame.
    pub fn to_message(&self) -> Message {
        Message::text(serde_json::to_string(self).expect("serializable"))
    }
}

/// Client to server (text frames; a binary frame publishes itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMsg {
    /// Publish to the room.
    Publish {
        /// Text content.
        #[serde(default)]
        text: Option<String>,
        /// Binary content, base64.
        #[serde(default)]
        binary: Option<String>,
        /// An idempotency key: a retry with the same key is not published twice.
        #[serde(default)]
        key: Option<String>,
    },
}

impl ClientMsg {
    /// The payload and key of a publish, or what is wrong with it.
    pub fn into_publish(self) -> Result<(Payload, Option<String>), String> {
        let ClientMsg::Publish { text, binary, key } = self;
        let payload = match (text, binary) {
            (Some(t), None) => Payload {
                text: true,
                data: Bytes::from(t),
            },
            (None, Some(b)) => Payload {
                text: false,
                data: base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| format!("binary is not base64: {e}"))?
                    .into(),
            },
            _ => return Err("a publish has exactly one of text and binary".into()),
        };
        Ok((payload, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_text_and_binary() {
        let pos = Position {
            epoch: "e1".into(),
            offset: 7,
        };
        let t = ServerMsg::message(
            &pos,
            &Payload {
                text: true,
                data: Bytes::from_static("héllo".as_bytes()),
            },
        );
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"{"type":"message","epoch":"e1","offset":7,"text":"héllo"}"#
        );
        let b = ServerMsg::message(
            &pos,
            &Payload {
                text: false,
                data: Bytes::from_static(&[0, 255]),
            },
        );
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"type":"message","epoch":"e1","offset":7,"binary":"AP8="}"#
        );
        let c: ClientMsg =
            serde_json::from_str(r#"{"type":"publish","binary":"AP8=","key":"k1"}"#).unwrap();
        let (p, key) = c.into_publish().unwrap();
        assert_eq!(
            (p.text, &p.data[..], key.as_deref()),
            (false, &[0u8, 255][..], Some("k1"))
        );
        let both: ClientMsg =
            serde_json::from_str(r#"{"type":"publish","text":"a","binary":"AP8="}"#).unwrap();
        assert!(both.into_publish().is_err());
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"publish","txt":"a"}"#).is_err());
    }
}
