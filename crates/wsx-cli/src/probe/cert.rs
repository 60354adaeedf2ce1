//! The TLS session and the server's certificates in words: version,
//! cipher, key exchange group, ALPN; each certificate's subject, issuer,
//! names, validity and fingerprint, with a warning when it expires soon.

use super::record::ms_text;
use std::time::Duration;
use wsx::tls::rustls::ClientConnection;

/// The transcript lines for a TLS session that took `elapsed` to set up.
pub(super) fn tls_lines(session: &ClientConnection, elapsed: Duration) -> Vec<String> {
    let version = session
        .protocol_version()
        .map_or("?".to_string(), |v| format!("{v:?}"));
    let cipher = session
        .negotiated_cipher_suite()
        .map_or("?".to_string(), |c| format!("{:?}", c.suite()));
    let alpn = session.alpn_protocol().map_or("none".to_string(), |p| {
        String::from_utf8_lossy(p).into_owned()
    });
    let kx = session
        .negotiated_key_exchange_group()
        .map_or("?".to_string(), |g| format!("{:?}", g.name()));
    let mut lines = vec![format!(
        "* tls: {version}, {cipher}, key exchange {kx}, ALPN {alpn} ({})",
        ms_text(elapsed)
    )];
    for (i, cert) in session
        .peer_certificates()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let (summary, warning) = describe_certificate(cert, now);
        lines.push(format!("* tls: certificate [{i}] {summary}"));
        lines.push(format!(
            "*      {} bytes, SHA-256 {}",
            cert.len(),
            wsx::tls::fingerprint(cert)
        ));
        if let Some(w) = warning {
            lines.push(format!("* tls: warning: certificate [{i}] {w}"));
        }
    }
    lines
}

/// Days of validity left below which probe warns.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// A certificate in one line (subject, issuer, names, validity) and, when it
/// expires soon, a warning. `now` is a Unix time in seconds.
fn describe_certificate(der: &[u8], now: i64) -> (String, Option<String>) {
    let cert = match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => c,
        Err(e) => return (format!("(not parsed: {e})"), None),
    };
    let names = alt_names(&cert);
    let v = cert.validity();
    let (from, until) = (v.not_before.timestamp(), v.not_after.timestamp());
    let date = |t: &x509_parser::time::ASN1Time| t.to_datetime().date().to_string();
    let days_left = (until - now).div_euclid(86_400);
    let state = if now < from {
        "not valid yet".to_string()
    } else if now > until {
        format!("expired {} day(s) ago", (now - until).div_euclid(86_400))
    } else {
        format!("{days_left} day(s) left")
    };
    let subject = cert.subject().to_string();
    let issuer = cert.issuer().to_string();
    let mut line = format!(
        "subject {}, issuer {}",
        if subject.is_empty() {
            "(empty)"
        } else {
            &subject
        },
        if issuer == subject {
            "itself (self-signed)"
        } else {
            &issuer
        },
    );
    if !names.is_empty() {
        line.push_str(&format!(", names {}", names.join(" ")));
    }
    line.push_str(&format!(
        ", valid {} to {} ({state})",
        date(&v.not_before),
        date(&v.not_after)
    ));
    let warning = (now <= until && days_left < EXPIRY_WARNING_DAYS).then(|| {
        format!(
            "expires in {days_left} day(s), on {}: renew it (`wsx serve` reloads --tls-cert/--tls-key on SIGHUP)",
            date(&v.not_after)
        )
    });
    (line, warning)
}

/// The subject alternative names: DNS names and IP addresses as text.
fn alt_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    cert.subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => d.to_string(),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string(),
                        16 => {
                            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()
                        }
                        _ => format!("IP {b:02x?}"),
                    },
                    other => format!("{other}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `example.test` and 127.0.0.1, valid
    /// 2026-01-01 to 2026-12-01.
    fn certificate() -> Vec<u8> {
        let mut p =
            rcgen::CertificateParams::new(vec!["example.test".into(), "127.0.0.1".into()]).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "example.test");
        p.not_before = rcgen::date_time_ymd(2026, 1, 1);
        p.not_after = rcgen::date_time_ymd(2026, 12, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn certificates_in_words() {
        let der = certificate();
        let day = 86_400;
        let dec_1 = 1_796_083_200; // 2026-12-01T00:00:00Z
        let (line, warning) = describe_certificate(&der, dec_1 - 100 * day);
        assert_eq!(
            line,
            "subject CN=example.test, issuer itself (self-signed), names example.test 127.0.0.1, \
             valid 2026-01-01 to 2026-12-01 (100 day(s) left)"
        );
        assert_eq!(warning, None);
        let (_, warning) = describe_certificate(&der, dec_1 - 3 * day);
        let w = warning.expect("a warning 3 days before expiry");
        assert!(
            w.starts_with("expires in 3 day(s), on 2026-12-01: renew it"),
            "{w}"
        );
        let (line, warning) = describe_certificate(&der, dec_1 + 2 * day);
        assert!(line.ends_with("(expired 2 day(s) ago)"), "{line}");
        assert_eq!(warning, None, "expired: the TLS error says so already");
        let (line, _) = describe_certificate(&der, dec_1 - 400 * day);
        assert!(line.ends_with("(not valid yet)"), "{line}");
        let (line, _) = describe_certificate(b"not a certificate", 0);
        assert!(line.starts_with("(not parsed"), "{line}");
    }
}
