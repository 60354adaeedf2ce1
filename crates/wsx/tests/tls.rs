//! wss:// on loopback with a CA and certificates generated here: round
//! trip, wrong host, unknown CA, mutual TLS, self-signed development mode.
#![cfg(feature = "tls")]

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use wsx::tls::{Roots, TlsClientOptions};
use wsx::{
    client::{ClientConfig, ClientRequest},
    Message,
};

struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: clients pick the issuer by name.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("wsx test CA {n}"));
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A certificate for `names`, signed by the CA.
    fn leaf(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
    }
}

/// A wss echo server: TLS with `config`, then `wsx::accept`.
async fn wss_echo(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut ws) = wsx::accept(tls).await else {
                    return;
                };
                while let Ok(Some(m)) = ws.recv().await {
                    if matches!(m, Message::Text(_) | Message::Binary(_))
                        && ws.send(m).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn client_config(opts: TlsClientOptions) -> ClientConfig {
    ClientConfig::default().tls(Some(opts.build().unwrap()))
}

fn trusting(pki: &Pki) -> TlsClientOptions {
    TlsClientOptions {
        roots: Roots::None,
        extra_roots: vec![pki.ca_der()],
        ..Default::default()
    }
}

async fn connect(
    url: &str,
    config: &ClientConfig,
) -> wsx::Result<wsx::WebSocket<wsx::MaybeTlsStream>> {
    wsx::client::connect_with(&ClientRequest::new(url).unwrap(), config)
        .await
        .map(|(ws, _)| ws)
}

#[tokio::test]
async fn wss_echo_round_trip_with_a_private_ca() {
    let pki = Pki::new();
    let (chain, key) = pki.leaf(&["localhost"]);
    let addr = wss_echo(wsx::tls::server_config(chain, key, None).unwrap()).await;
    let config = client_config(trusting(&pki));
    let mut ws = connect(&format!("wss://localhost:{}/chat", addr.port()), &config)
        .await
        .unwrap();
    let tls = ws.get_ref().tls().expect("a TLS session");
    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(tls.protocol_version().is_some());
    assert!(ws.deflate().is_some(), "compression works over TLS too");
    for m in [
        Message::text("hello over TLS"),
        Message::binary(vec![0xab; 300_000]),
        Message::text("{\"k\":1}".repeat(5000)),
    ] {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(m));
    }
    ws.close(None).await.unwrap();
    while ws.recv().await.unwrap().is_some() {}
}

#[tokio::test]
async fn wrong_host_and_unknown_ca_are_refused_in_words() {
    let pki = Pki::new();
    let (chain, key) = pki.leaf(&["localhost"]);
    let addr = wss_echo(wsx::tls::server_config(chain, key, None).unwrap()).await;
    // The certificate names localhost, not 127.0.0.1.
    let err = connect(
        &format!("wss://127.0.0.1:{}/", addr.port()),
        &client_config(trusting(&pki)),
    )
    .await
    .expect_err("wrong host");
    assert!(err.is_tls(), "{err}");
    assert!(
        err.to_string().contains("not valid for \"127.0.0.1\""),
        "{err}"
    );
    // Public roots only: the private CA is unknown.
    let public = client_config(TlsClientOptions {
        roots: Roots::Bundled,
        ..Default::default()
    });
    let err = connect(&format!("wss://localhost:{}/", addr.port()), &public)
        .await
        .expect_err("unknown CA");
    assert!(err.is_tls(), "{err}");
    assert!(err.to_string().contains("unknown CA"), "{err}");
    // The cause, in words; the remedy of a tool (wsx's `--ca`) is not the
    // library's to name. The rustls error is there to act on.
    assert!(!err.to_string().contains("--ca"), "{err}");
    let rustls_error = err.tls_error().and_then(|t| t.rustls_error());
    assert!(
        matches!(
            rustls_error,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{rustls_error:?}"
    );
}

#[tokio::test]
async fn mutual_tls_required_and_satisfied() {
    let pki = Pki::new();
    let (chain, key) = pki.leaf(&["localhost"]);
    let addr =
        wss_echo(wsx::tls::server_config(chain, key, Some(vec![pki.ca_der()])).unwrap()).await;
    let url = format!("wss://localhost:{}/", addr.port());
    // Without a client certificate: refused.
    let err = connect(&url, &client_config(trusting(&pki)))
        .await
        .expect_err("no client certificate");
    assert!(err.is_tls(), "{err}");
    assert!(
        err.to_string().contains("requires a client certificate"),
        "{err}"
    );
    // With one signed by the CA the server trusts: accepted.
    let (client_chain, client_key) = pki.leaf(&["client.test"]);
    let mut opts = trusting(&pki);
    opts.client_auth = Some((client_chain, client_key));
    let mut ws = connect(&url, &client_config(opts)).await.unwrap();
    ws.send(Message::text("mtls")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("mtls")));
}

#[tokio::test]
async fn self_signed_development_certificate() {
    let dev = wsx::tls::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    assert_eq!(dev.fingerprint.len(), 32 * 3 - 1, "{}", dev.fingerprint);
    assert!(dev.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let addr = wss_echo(dev.config.clone()).await;
    let url = format!("wss://127.0.0.1:{}/", addr.port());
    // Trusting the printed certificate works...
    let ca = CertificateDer::from_pem_slice(dev.cert_pem.as_bytes()).unwrap();
    use rustls::pki_types::pem::PemObject;
    let mut ws = connect(
        &url,
        &client_config(TlsClientOptions {
            roots: Roots::None,
            extra_roots: vec![ca],
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    ws.send(Message::text("dev")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("dev")));
    // ...and so does the explicitly dangerous option; the default does not.
    let insecure = client_config(TlsClientOptions {
        danger_accept_invalid_certs: true,
        ..Default::default()
    });
    assert!(connect(&url, &insecure).await.is_ok());
    assert!(connect(&url, &ClientConfig::default())
        .await
        .unwrap_err()
        .is_tls());
}

#[tokio::test]
async fn plain_server_on_a_wss_url_is_explained() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = wsx::accept(tcp).await;
    });
    let err = connect(
        &format!("wss://localhost:{}/", addr.port()),
        &ClientConfig::default(),
    )
    .await
    .expect_err("not TLS");
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[tokio::test]
async fn certificate_reload_keeps_open_connections() {
    let (old_ca, new_ca) = (Pki::new(), Pki::new());
    let store = wsx::tls::CertStore::new();
    let (chain, key) = old_ca.leaf(&["localhost"]);
    store.set_default(chain, key).unwrap();
    let addr = wss_echo(store.server_config(None).unwrap()).await;
    let url = format!("wss://localhost:{}/", addr.port());
    let mut open = connect(&url, &client_config(trusting(&old_ca)))
        .await
        .unwrap();
    // Renew: a certificate from another CA replaces the old one.
    let (chain, key) = new_ca.leaf(&["localhost"]);
    store.set_default(chain, key).unwrap();
    // A key that does not match its certificate is refused; the new one stays.
    let (chain, _) = new_ca.leaf(&["localhost"]);
    let (_, other_key) = new_ca.leaf(&["localhost"]);
    assert!(store.set_default(chain, other_key).unwrap_err().is_tls());
    // The open connection is untouched...
    open.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        open.recv().await.unwrap(),
        Some(Message::text("still here"))
    );
    // ...new handshakes get the new certificate.
    let err = connect(&url, &client_config(trusting(&old_ca)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown CA"), "{err}");
    let mut fresh = connect(&url, &client_config(trusting(&new_ca)))
        .await
        .unwrap();
    fresh.send(Message::text("renewed")).await.unwrap();
    assert_eq!(fresh.recv().await.unwrap(), Some(Message::text("renewed")));
}

#[tokio::test]
async fn sni_picks_the_certificate_by_name() {
    let pki = Pki::new();
    let store = wsx::tls::CertStore::new();
    for name in ["a.test", "b.test"] {
        let (chain, key) = pki.leaf(&[name]);
        store.add(name, chain, key).unwrap();
    }
    let (chain, key) = pki.leaf(&["localhost"]);
    store.set_default(chain, key).unwrap();
    let addr = wss_echo(store.server_config(None).unwrap()).await;
    let tls = trusting(&pki).build().unwrap();
    for name in ["a.test", "b.test"] {
        // The names do not resolve: connect by address, send the name as SNI.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(server_name, tcp)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let req = ClientRequest::new(&format!("wss://{name}/")).unwrap();
        let (mut ws, _) = wsx::client::handshake(&req, stream, &ClientConfig::default())
            .await
            .unwrap();
        ws.send(Message::text(name)).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::text(name)));
    }
    // Without SNI (an IP address), the default certificate.
    let err = connect(
        &format!("wss://127.0.0.1:{}/", addr.port()),
        &client_config(trusting(&pki)),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not valid for"), "{err}");
    connect(
        &format!("wss://localhost:{}/", addr.port()),
        &client_config(trusting(&pki)),
    )
    .await
    .unwrap();
}

/// A wss peer that drops TCP without TLS `close_notify` (a crash, a killed
/// process) and without a close frame ends as 1006, as over ws://; rustls
/// reports it as an `UnexpectedEof` I/O error, which recv used to pass on.
#[tokio::test]
async fn tls_peer_vanishing_without_close_notify_is_1006() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new();
    let (chain, key) = pki.leaf(&["localhost"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor =
        tokio_rustls::TlsAcceptor::from(wsx::tls::server_config(chain, key, None).unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then_some(value)
            })
            .expect("key");
        let accept = wsx::wsx_proto::handshake::accept_key(key.trim().as_bytes());
        let out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        tls.write_all(out.as_bytes()).await.unwrap();
        tls.write_all(b"\x81\x05Hello").await.unwrap();
        tls.flush().await.unwrap();
        // End TCP without TLS close_notify and without a close frame.
        let (tcp, _) = tls.into_inner();
        drop(tcp);
    });
    let config = client_config(trusting(&pki)).deflate(None);
    let mut ws = connect(&format!("wss://localhost:{}/", addr.port()), &config)
        .await
        .unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("Hello")));
    let err = tokio::time::timeout(std::time::Duration::from_secs(5), ws.recv())
        .await
        .expect("recv did not end")
        .expect_err("no close frame");
    assert_eq!(err.close_code(), Some(wsx::CloseCode::ABNORMAL), "{err}");
    assert_eq!(
        err.close_info().unwrap().cause,
        Some(wsx::CloseCause::PeerVanished)
    );
    assert!(ws.recv().await.unwrap().is_none(), "after the end");
}
