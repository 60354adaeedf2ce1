//! Advice for the person at the terminal: which `wsx` flag, header or
//! proxy line fixes an error.
//!
//! The library states causes in plain words ("the server answered 200 OK
//! instead of 101 Switching Protocols: the Upgrade header did not reach
//! it") and names no command-line flag or proxy configuration; this module
//! maps its errors, and the HTTP answers that refuse a handshake, to that
//! advice. `connect`, `probe`, `bench` and `serve` print errors through it.

use std::error::Error as StdError;
use wsx::wsx_proto::handshake::{
    ClientHandshakeError, HandshakeError, HandshakeErrorKind, Rejection, NGINX_UPGRADE_LINES,
};
use wsx::{
    client::{ProxyError, ProxyErrorKind},
    TlsError,
};

/// An error and the causes beneath it, each once, joined with ": " (what
/// anyhow's `{:#}` prints).
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// The advice for an error, if there is any: the flag, header or proxy
/// line that fixes it. May span lines (nginx configuration, one per line).
pub fn hint(e: &wsx::Error) -> Option<String> {
    if let Some(h) = e.client_handshake() {
        return handshake_hint(h);
    }
    if let Some(h) = e.server_handshake() {
        return refusal_hint(h);
    }
    if let Some(t) = e.tls_error() {
        return tls_hint(t);
    }
    if let Some(p) = e.proxy_error() {
        return Some(proxy_hint(p));
    }
    None
}

/// Prints `PROG: error: causes` and, when there is advice, `PROG: hint: ...`
/// on stderr.
pub fn eprint(prog: &str, e: &wsx::Error) {
    eprintln!("{prog}: {}", chain(e));
    if let Some(h) = hint(e) {
        eprintln!("{prog}: hint: {h}");
    }
}

/// The error, its causes and the advice on one line (for a log).
pub fn one_line(e: &wsx::Error) -> String {
    match hint(e) {
        Some(h) => format!("{} (hint: {})", chain(e), h.replace("\n    ", " ")),
        None => chain(e),
    }
}

/// The nginx lines that pass WebSocket upgrades on, after `lead`.
fn nginx_fix(lead: &str) -> String {
    let mut s =
        format!("{lead}; nginx needs, in the location that proxies to the WebSocket server:");
    for line in NGINX_UPGRADE_LINES {
        s.push_str("\n    ");
        s.push_str(line);
    }
    s
}

/// Advice for a failed client handshake.
pub fn handshake_hint(e: &ClientHandshakeError) -> Option<String> {
    match e {
        ClientHandshakeError::Rejected(r) => rejection_hint(r),
        ClientHandshakeError::Closed => Some(nginx_fix(
            "if a reverse proxy sits in front, make it forward the Upgrade header (one that does not often hangs up like this)",
        )),
        ClientHandshakeError::UnofferedProtocol(p) => Some(format!(
            "the server insists on subprotocol {p:?}: offer it with --subprotocol {p}"
        )),
        _ => None,
    }
}

/// Advice for an HTTP answer other than 101: 200/400 or a 426 that asks
/// for the very upgrade the request made (a proxy dropped the Upgrade
/// header: the nginx lines), 401/403 (credentials, `--origin`).
pub fn rejection_hint(r: &Rejection) -> Option<String> {
    if r.upgrade_not_forwarded() {
        return Some(nginx_fix(
            "make the reverse proxy in front of the server forward the Upgrade header",
        ));
    }
    match r.status.as_u16() {
        200 | 400 => Some(nginx_fix(
            "if a reverse proxy sits in front, make it forward the Upgrade header",
        )),
        401 => Some(
            "send credentials: --auth USER:PASS, -H 'Authorization: Bearer TOKEN', or a cookie (-H 'Cookie: NAME=VALUE')".into(),
        ),
        403 => Some(
            "if the server checks the Origin header, send one it allows with --origin URL (a `wsx serve` allows more with its own --origin); if it wants credentials: --auth USER:PASS or -H 'Authorization: Bearer TOKEN'".into(),
        ),
        _ => None,
    }
}

/// Advice for a server that refused a handshake (`wsx serve`'s log).
pub fn refusal_hint(e: &HandshakeError) -> Option<String> {
    match e.kind() {
        HandshakeErrorKind::OriginNotAllowed(o) => Some(format!(
            "if that site is yours, allow it: wsx serve --origin {o}"
        )),
        HandshakeErrorKind::MissingUpgrade => Some(nginx_fix(
            "if a reverse proxy sits in front, make it forward the Upgrade header",
        )),
        _ => None,
    }
}

/// Advice for a TLS failure, from the rustls error behind it.
pub fn tls_hint(e: &TlsError) -> Option<String> {
    use wsx::tls::rustls::{AlertDescription, CertificateError as C, Error as R};
    Some(match e.rustls_error()? {
        R::InvalidCertificate(C::UnknownIssuer) => "trust its CA with --ca FILE (for `wsx serve --tls-self-signed`, the certificate file it printed); --insecure skips the check (tests only)".into(),
        R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "use a host name the certificate names in the URL (it may differ from the address: wss://localhost/ rather than wss://127.0.0.1/)".into()
        }
        R::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => "check this machine's clock; otherwise the server must renew its certificate".into(),
        R::InvalidCertificate(_) => {
            "check the server's certificate chain (intermediates included); --ca FILE trusts a private CA".into()
        }
        R::AlertReceived(AlertDescription::CertificateRequired) => {
            "pass a client certificate: --cert FILE --key FILE".into()
        }
        R::AlertReceived(_) => {
            "if the server requires a client certificate, pass --cert FILE --key FILE".into()
        }
        _ => return None,
    })
}

/// Advice for a proxy that did not open the tunnel.
pub fn proxy_hint(e: &ProxyError) -> String {
    match e.kind() {
        ProxyErrorKind::Connect(_) => {
            "check --proxy, or HTTPS_PROXY / HTTP_PROXY / ALL_PROXY (NO_PROXY lists the hosts reached directly)".into()
        }
        ProxyErrorKind::HttpStatus { status: 407, .. } | ProxyErrorKind::Socks5Auth { .. } => {
            "the credentials go in the proxy URL: --proxy http://USER:PASS@HOST:PORT (or socks5://USER:PASS@HOST:PORT)".into()
        }
        _ => "check the proxy URL (--proxy or HTTP(S)_PROXY/ALL_PROXY), its credentials, and that it allows this host and port".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsx::wsx_proto::handshake::{ClientHandshake, ClientRequest};

    /// The client handshake error for a raw answer.
    fn answer(raw: &str) -> ClientHandshakeError {
        let req = ClientRequest::new("ws://x/").unwrap();
        let (mut hs, _) = ClientHandshake::new(&req, [0; 16]);
        match hs.handle_data(raw.as_bytes()) {
            Err(e) => e,
            Ok(_) => hs.handle_eof(),
        }
    }

    fn has_nginx_lines(h: &str) -> bool {
        NGINX_UPGRADE_LINES
            .iter()
            .all(|l| h.lines().any(|line| line.trim() == *l))
    }

    #[test]
    fn refusals_get_the_fix_for_their_cause() {
        for (raw, nginx, words) in [
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, ""),
            (
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                true,
                "",
            ),
            (
                "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n",
                true,
                "make the reverse proxy in front of the server forward",
            ),
            (
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
                false,
                "--auth USER:PASS",
            ),
            (
                "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
                false,
                "--origin URL",
            ),
        ] {
            let e = answer(raw);
            let h = handshake_hint(&e).unwrap_or_else(|| panic!("no hint for {raw:?}"));
            assert_eq!(has_nginx_lines(&h), nginx, "{raw:?}: {h}");
            assert!(h.contains(words), "{raw:?}: {h}");
            // The library said the cause; the advice is only here.
            assert!(!e.to_string().contains("nginx"), "{e}");
        }
        // Other answers: the library's words are all there is to say.
        for raw in [
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 8\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert_eq!(handshake_hint(&answer(raw)), None, "{raw:?}");
        }
        // Hung up before the head: the proxy case too.
        let h = handshake_hint(&answer("HTTP/1.1 10")).unwrap();
        assert!(has_nginx_lines(&h), "{h}");
        let h = handshake_hint(&ClientHandshakeError::UnofferedProtocol("chat".into())).unwrap();
        assert!(h.contains("--subprotocol chat"), "{h}");
    }

    #[test]
    fn a_refused_origin_names_the_serve_flag() {
        let e = wsx::server::OriginPolicy::same_origin()
            .check(Some("https://evil.example"), Some("a.example"))
            .expect_err("cross-origin");
        assert!(!e.to_string().contains("--origin"), "{e}");
        let h = refusal_hint(&e).unwrap();
        assert!(h.contains("wsx serve --origin https://evil.example"), "{h}");
        let line = one_line(&wsx::Error::from(e));
        assert!(
            line.contains("not allowed") && line.contains("(hint: if that site"),
            "{line}"
        );
    }

    #[test]
    fn chains_print_each_cause_once() {
        let io = std::io::Error::other("inner");
        let e = wsx::Error::from(io);
        assert_eq!(chain(&e), "i/o error: inner");
        let line = one_line(&wsx::Error::from(answer(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        )));
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("(hint: if a reverse proxy sits in front, make it forward"),
            "{line}"
        );
    }
}
