//! Who may do what: the access token (page, REST API, WebSocket as a
//! writer or viewer) and short-lived single-use tickets (a viewer link with
//! a role, for one session).
//!
//! Browsers cannot set headers on a WebSocket, so the token is accepted from
//! `Authorization: Bearer`, the cookie the page sets, or a `token` query
//! parameter; a ticket only as the `ticket` query parameter.

use crate::protocol::Role;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie the page sets once opened with `?token=`.
pub const COOKIE: &str = "wsx_term_token";

/// Tickets outstanding at most (each is small; this bounds a flood).
const MAX_TICKETS: usize = 10_000;

/// A random URL-safe secret of 32 bytes.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random number generator");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// The access token (any session, any role).
    Token(&'a str),
    /// A ticket (one session, one role, once).
    Ticket(&'a str),
    /// Nothing.
    None,
}

/// Finds the credential in a request's headers and query.
pub fn credential<'a>(headers: &'a http::HeaderMap, query: Option<&'a str>) -> Credential<'a> {
    if let Some(t) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Credential::Token(t.trim());
    }
    if let Some(t) = query_param(query, "token") {
        return Credential::Token(t);
    }
    if let Some(t) = query_param(query, "ticket") {
        return Credential::Ticket(t);
    }
    for cookies in headers.get_all(http::header::COOKIE) {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        for c in cookies.split(';') {
            if let Some((k, v)) = c.trim().split_once('=') {
                if k == COOKIE {
                    return Credential::Token(v);
                }
            }
        }
    }
    Credential::None
}

/// One `name=value` of a query string (tokens are URL-safe: no decoding).
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[derive(Debug)]
struct Ticket {
    session: String,
    role: Role,
    expires: Instant,
}

/// The access token and the outstanding tickets.
#[derive(Debug)]
pub struct Auth {
    token: String,
    tickets: Mutex<HashMap<String, Ticket>>,
}

/// Why a ticket was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketError {
    /// Unknown, already used, or expired.
    Invalid,
    /// Valid, but for another session.
    OtherSession,
}

impl Auth {
    /// With this access token.
    pub fn new(token: String) -> Auth {
        Auth {
            token,
            tickets: Mutex::default(),
        }
    }

    /// The access token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether `t` is the access token.
    pub fn is_token(&self, t: &str) -> bool {
        same_secret(t, &self.token)
    }

    /// A ticket for `session` with `role`, valid once within `ttl`.
    pub fn issue_ticket(&self, session: &str, role: Role, ttl: Duration) -> String {
        let ticket = random_secret();
        let now = Instant::now();
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets.retain(|_, t| t.expires > now);
        if tickets.len() >= MAX_TICKETS {
            // The oldest goes: issuing needs the access token, so this is
            // a holder of it being careless, not an attack to resist.
            if let Some(oldest) = tickets
                .iter()
                .min_by_key(|(_, t)| t.expires)
                .map(|(k, _)| k.clone())
            {
                tickets.remove(&oldest);
            }
        }
        tickets.insert(
            ticket.clone(),
            Ticket {
                session: session.to_string(),
                role,
                expires: now + ttl,
            },
        );
        ticket
    }

    /// Uses up a ticket for `session`: its role.
    pub fn redeem(&self, ticket: &str, session: &str) -> Result<Role, TicketError> {
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        let t = tickets.remove(ticket).ok_or(TicketError::Invalid)?;
        if t.expires <= Instant::now() {
            return Err(TicketError::Invalid);
        }
        if t.session != session {
            return Err(TicketError::OtherSession);
        }
        Ok(t.role)
    }

    /// Whether a ticket is outstanding (the page loads before it is used).
    pub fn ticket_is_live(&self, ticket: &str) -> bool {
        let tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets
            .get(ticket)
            .is_some_and(|t| t.expires > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once_for_its_session_only() {
        let auth = Auth::new("t".into());
        let a = auth.issue_ticket("s1", Role::Viewer, Duration::from_secs(30));
        assert_eq!(auth.redeem(&a, "s1"), Ok(Role::Viewer));
        assert_eq!(auth.redeem(&a, "s1"), Err(TicketError::Invalid));
        let b = auth.issue_ticket("s1", Role::Writer, Duration::from_secs(30));
        assert_eq!(auth.redeem(&b, "s2"), Err(TicketError::OtherSession));
        let c = auth.issue_ticket("s1", Role::Writer, Duration::ZERO);
        assert_eq!(auth.redeem(&c, "s1"), Err(TicketError::Invalid));
    }

    #[test]
    fn the_credential_comes_from_bearer_query_or_cookie() {
        let mut h = http::HeaderMap::new();
        assert_eq!(
            credential(&h, Some("a=1&token=xyz")),
            Credential::Token("xyz")
        );
        assert_eq!(
            credential(&h, Some("ticket=abc")),
            Credential::Ticket("abc")
        );
        h.insert(
            http::header::COOKIE,
            "x=1; wsx_term_token=cookie".parse().unwrap(),
        );
        assert_eq!(credential(&h, None), Credential::Token("cookie"));
        h.insert(http::header::AUTHORIZATION, "Bearer bear".parse().unwrap());
        assert_eq!(credential(&h, None), Credential::Token("bear"));
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("ab", "abc")
        );
    }
}
