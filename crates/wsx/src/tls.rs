//! wss://: TLS through rustls.
//!
//! The crypto provider is chosen here and passed to every rustls builder
//! explicitly, so no combination of features in an application's
//! dependency graph can leave rustls without a process-wide default
//! provider and panic at runtime: ring by default; aws-lc-rs with the
//! `post-quantum` feature, which offers and prefers X25519MLKEM768 (falling
//! back to X25519 and the NIST curves with peers that lack it).

use crate::error::{Error, Kind, Result, TlsError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpStream;

pub use rustls;
pub use tokio_rustls;

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    #[cfg(feature = "post-quantum")]
    let make = rustls::crypto::aws_lc_rs::default_provider;
    #[cfg(not(feature = "post-quantum"))]
    let make = rustls::crypto::ring::default_provider;
    P.get_or_init(|| Arc::new(make())).clone()
}

/// The key exchange groups wss:// offers (client) and accepts (server), in
/// order of preference, e.g. `["X25519MLKEM768", "X25519", ...]` with the
/// `post-quantum` feature.
///
/// ```
/// let groups = wsx::tls::key_exchange_groups();
/// assert!(groups.iter().any(|g| g == "X25519"));
/// ```
pub fn key_exchange_groups() -> Vec<String> {
    provider()
        .kx_groups
        .iter()
        .map(|g| format!("{:?}", g.name()))
        .collect()
}

/// A TLS failure with nothing beneath it.
fn tls_err(what: impl Into<String>) -> Error {
    Error::from(TlsError::new(what))
}

/// A TLS failure caused by `source`; `what` says what wsx was doing and
/// does not repeat the source's text.
fn tls_caused(
    what: impl Into<String>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> Error {
    Error::from(TlsError::caused_by(what, source))
}

/// Where a client's trusted root certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Roots {
    /// Mozilla's roots, compiled in (webpki-roots): the same everywhere.
    Bundled,
    /// The operating system's store (rustls-native-certs).
    System,
    /// Both (the default): corporate CAs installed on the machine work,
    /// and so do public sites on machines with an empty store.
    #[default]
    Both,
    /// None: only [`TlsClientOptions::extra_roots`].
    None,
}

/// Client TLS settings; [`TlsClientOptions::build`] makes the rustls
/// configuration to put in [`crate::client::ClientConfig::tls`].
#[derive(Debug, Default)]
pub struct TlsClientOptions {
    /// Trusted roots.
    pub roots: Roots,
    /// More trusted CAs (e.g. a private CA, read with [`load_certs`]).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// A client certificate chain and key, for servers that require
    /// mutual TLS.
    pub client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// DANGEROUS: accept any server certificate (no authentication at all:
    /// anyone on the path can read and change the traffic). For tests
    /// against self-signed servers only.
    pub danger_accept_invalid_certs: bool,
}

impl TlsClientOptions {
    /// The rustls client configuration (ALPN `http/1.1`).
    ///
    /// # Errors
    /// An unusable client certificate or key, or no trusted roots at all.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_caused("cannot configure TLS", e))?;
        let builder = if self.danger_accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnything))
        } else {
            let mut store = RootCertStore::empty();
            if matches!(self.roots, Roots::Bundled | Roots::Both) {
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            if matches!(self.roots, Roots::System | Roots::Both) {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = store.add(cert);
                }
            }
            for cert in &self.extra_roots {
                store
                    .add(cert.clone())
                    .map_err(|e| tls_caused("CA certificate not usable as a trust root", e))?;
            }
            if store.is_empty() {
                return Err(tls_err(
                    "no trusted root certificates (the system store is empty; use Roots::Bundled or add a CA)",
                ));
            }
            builder.with_root_certificates(store)
        };
        let mut config = match &self.client_auth {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| tls_caused("client certificate or key not usable", e))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The client configuration used when [`crate::client::ClientConfig::tls`] is
/// `None`: system and bundled roots.
pub(crate) fn default_client_config() -> Result<Arc<rustls::ClientConfig>> {
    static C: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = C.get() {
        return Ok(c.clone());
    }
    let c = TlsClientOptions::default().build()?;
    Ok(C.get_or_init(|| c).clone())
}

/// Reads every certificate of a PEM file.
///
/// # Errors
/// The file cannot be read or holds no certificate.
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<_, _>>())
        .map_err(|e| {
            tls_caused(
                format!("{}: cannot read PEM certificates", path.display()),
                e,
            )
        })?;
    if certs.is_empty() {
        return Err(tls_err(format!(
            "{}: no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// The file cannot be read or holds no key.
pub fn load_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        tls_caused(
            format!(
                "{}: no usable PEM private key (expected -----BEGIN PRIVATE KEY----- or RSA/EC)",
                path.display()
            ),
            e,
        )
    })
}

/// A server configuration from a certificate chain and its key (ALPN
/// `h2`, `http/1.1`: [`crate::Server`] serves both; for a server of your
/// own that speaks only HTTP/1.1, set `alpn_protocols` to `http/1.1`). With `client_roots`, clients must present a certificate
/// signed by one of them (mutual TLS).
///
/// # Errors
/// A key that does not match the certificate, or unusable client roots.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<Vec<CertificateDer<'static>>>,
) -> Result<Arc<rustls::ServerConfig>> {
    let store = CertStore::new();
    store.set_default(chain, key)?;
    store.server_config(client_roots)
}

/// [`server_config`] from PEM files.
///
/// # Errors
/// As [`load_certs`], [`load_key`] and [`server_config`].
pub fn server_config_from_pem(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<Arc<rustls::ServerConfig>> {
    server_config(load_certs(cert)?, load_key(key)?, None)
}

/// Server certificates that can be replaced while the server runs (new
/// handshakes get the new certificate; open connections are untouched) and
/// chosen by SNI name. Cheap to clone: clones share the certificates.
///
/// ```no_run
/// # fn run() -> Result<(), wsx::Error> {
/// use wsx::tls::{load_certs, load_key, CertStore};
/// let certs = CertStore::new();
/// certs.set_default(load_certs("site.pem")?, load_key("site.key")?)?;
/// certs.add("api.example.com", load_certs("api.pem")?, load_key("api.key")?)?;
/// let acceptor = wsx::tls::tokio_rustls::TlsAcceptor::from(certs.server_config(None)?);
/// // Later, e.g. on SIGHUP: certs.set_default(new_chain, new_key)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct CertStore {
    inner: Arc<std::sync::RwLock<StoreInner>>,
}

#[derive(Debug, Default)]
struct StoreInner {
    default: Option<Arc<rustls::sign::CertifiedKey>>,
    by_name: std::collections::HashMap<String, Arc<rustls::sign::CertifiedKey>>,
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::sign::CertifiedKey>> {
    if chain.is_empty() {
        return Err(tls_err("empty certificate chain"));
    }
    rustls::sign::CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|e| tls_caused("certificate and key do not go together", e))
}

impl CertStore {
    /// An empty store (handshakes fail until a certificate is set).
    pub fn new() -> Self {
        CertStore::default()
    }

    /// Sets (or replaces) the certificate for clients that send no SNI
    /// name or one without its own certificate.
    ///
    /// # Errors
    /// A key that does not match the certificate, or an empty chain: the
    /// previous certificate stays.
    pub fn set_default(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<()> {
        let ck = certified(chain, key)?;
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .default = Some(ck);
        Ok(())
    }

    /// Sets (or replaces) the certificate for SNI name `name`.
    ///
    /// # Errors
    /// As [`CertStore::set_default`].
    pub fn add(
        &self,
        name: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<()> {
        let ck = certified(chain, key)?;
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .insert(name.to_ascii_lowercase(), ck);
        Ok(())
    }

    /// A server configuration that takes its certificates from this store
    /// (ALPN `h2`, `http/1.1`, as [`server_config`]; with `client_roots`,
    /// mutual TLS).
    ///
    /// # Errors
    /// Unusable client roots.
    pub fn server_config(
        &self,
        client_roots: Option<Vec<CertificateDer<'static>>>,
    ) -> Result<Arc<rustls::ServerConfig>> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_caused("cannot configure TLS", e))?;
        let builder = match client_roots {
            Some(roots) => builder.with_client_cert_verifier(client_verifier(roots)?),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(self.clone()));
        // HTTP/2 first: crate::Server serves both (ServerConfig::http2).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl rustls::server::ResolvesServerCert for CertStore {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        hello
            .server_name()
            .and_then(|n| inner.by_name.get(&n.to_ascii_lowercase()))
            .or(inner.default.as_ref())
            .cloned()
    }
}

fn client_verifier(
    roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut store = RootCertStore::empty();
    for c in roots {
        store
            .add(c)
            .map_err(|e| tls_caused("client CA not usable", e))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider())
        .build()
        .map_err(|e| tls_caused("client CA not usable", e))
}

/// A self-signed certificate for development (`wsx serve --tls-self-signed`).
#[derive(Debug)]
pub struct SelfSigned {
    /// The server configuration using it.
    pub config: Arc<rustls::ServerConfig>,
    /// The certificate, PEM (clients trust it as a CA).
    pub cert_pem: String,
    /// SHA-256 of the certificate, as colon-separated hex (what browsers show).
    pub fingerprint: String,
}

/// Generates a self-signed certificate for `names` (DNS names or IP
/// addresses) and a server configuration with it.
///
/// # Errors
/// A name rcgen cannot put in a certificate.
pub fn self_signed(names: &[&str]) -> Result<SelfSigned> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| tls_caused("cannot generate a certificate", e))?;
    let der = ck.cert.der().clone();
    let fingerprint = fingerprint(&der);
    let key = PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    Ok(SelfSigned {
        config: server_config(vec![der], key, None)?,
        cert_pem: ck.cert.pem(),
        fingerprint,
    })
}

/// SHA-256 fingerprint of a DER certificate, `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs the client side of TLS on `tcp` for `host` (SNI and certificate
/// name), and explains failures in words.
///
/// # Errors
/// The handshake failed: the error says which check (expired, wrong host,
/// unknown CA, client certificate required...).
pub async fn handshake(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| tls_caused(format!("{host:?} is not a valid TLS server name"), e))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| explain(host, e))
}

/// An I/O error that carries a TLS alert (with TLS 1.3 a refused client
/// certificate surfaces on the first read after the handshake), in words.
pub(crate) fn explain_late(host: &str, e: io::Error) -> Error {
    if e.get_ref()
        .and_then(|r| r.downcast_ref::<rustls::Error>())
        .is_some()
    {
        explain(host, e)
    } else {
        Error::new(Kind::Io(e))
    }
}

/// A TLS failure in words: which check failed. The `rustls::Error` is the
/// source; these words state the cause and name no remedy of any one tool.
pub(crate) fn explain(host: &str, e: io::Error) -> Error {
    use rustls::CertificateError as C;
    let Some(tls) = e.get_ref().and_then(|r| r.downcast_ref::<rustls::Error>()) else {
        return Error::new(Kind::Io(io::Error::new(
            e.kind(),
            format!("TLS handshake with {host}: {e} (is this port speaking TLS? for plain WebSocket use ws://)"),
        )));
    };
    let why: Option<String> = match tls {
        rustls::Error::InvalidCertificate(c) => Some(match c {
            C::Expired | C::ExpiredContext { .. } => {
                "the server's certificate has expired (or this machine's clock is wrong)".to_string()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (or this machine's clock is wrong)".to_string()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "the server's certificate is not valid for {host:?} (wrong host name in the URL, or the server sends another site's certificate)"
            ),
            C::UnknownIssuer => "the server's certificate is signed by an unknown CA (a private or self-signed CA, which this client was not told to trust)".to_string(),
            C::Revoked => "the server's certificate was revoked".to_string(),
            C::BadSignature => "the server's certificate has a bad signature".to_string(),
            _ => "the server's certificate was rejected".to_string(),
        }),
        rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
            Some("the server requires a client certificate (mutual TLS)".to_string())
        }
        rustls::Error::AlertReceived(_) => Some(
            "the server refused the TLS handshake (a server that requires a client certificate may answer so)".to_string(),
        ),
        rustls::Error::NoApplicationProtocol => {
            Some("no common ALPN protocol (the server does not offer http/1.1)".to_string())
        }
        rustls::Error::InvalidMessage(_) => Some(
            "the server's answer is not TLS (is this port speaking TLS? for plain WebSocket use ws://)".to_string(),
        ),
        _ => None,
    };
    let what = match why {
        Some(why) => format!("TLS handshake with {host} failed: {why}"),
        None => format!("TLS handshake with {host} failed"),
    };
    // The rustls error itself becomes the source (not the io::Error around it).
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => match inner.downcast::<rustls::Error>() {
            Ok(tls) => tls_caused(what, *tls),
            Err(other) => tls_caused(what, io::Error::new(kind, other)),
        },
        None => tls_err(what),
    }
}

/// DANGEROUS: a verifier that accepts every certificate.
#[derive(Debug)]
struct AcceptAnything;

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
