//! wss:// and Origin flags of the servers (`wsx serve`, `wsx term`):
//! certificate files (reloaded on SIGHUP) or a self-signed certificate for
//! development; the Origin allowlist.

use std::net::SocketAddr;
use std::path::PathBuf;

/// `--tls-cert/--tls-key` or `--tls-self-signed`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve wss:// with this certificate chain (PEM; with --tls-key). SIGHUP
    /// reloads both files (renewals) without dropping connections.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve wss:// with a self-signed certificate generated at start (for
    /// development): its SHA-256 fingerprint is printed and the certificate
    /// written to a file to give clients (`wsx connect --ca FILE`).
    #[arg(long)]
    pub tls_self_signed: bool,
}

/// `--origin` and `--allow-any-origin`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OriginArgs {
    /// Also allow this Origin (repeatable): `https://example.com` or
    /// `https://*.example.com`. Same-origin browsers (Origin host equal to
    /// Host) and non-browser clients (no Origin) are always accepted.
    #[arg(long = "origin", value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Accept any Origin (disables cross-site WebSocket hijacking protection).
    #[arg(long)]
    pub allow_any_origin: bool,
}

impl OriginArgs {
    /// The library's policy for these flags.
    pub fn policy(&self) -> Result<wsx::server::OriginPolicy, String> {
        let mut origin = if self.allow_any_origin {
            tracing::warn!("--allow-any-origin: any web site can open WebSockets to this server with its visitors' cookies (cross-site WebSocket hijacking protection is off)");
            wsx::server::OriginPolicy::allow_any()
        } else {
            wsx::server::OriginPolicy::same_origin()
        };
        for p in &self.patterns {
            origin = origin.allow(p).map_err(|e| format!("--origin: {e}"))?;
        }
        Ok(origin)
    }
}

/// The TLS acceptor for `--tls-cert/--tls-key` or `--tls-self-signed`.
pub fn tls_acceptor(
    args: &TlsArgs,
    listen: SocketAddr,
    http2: bool,
) -> Result<Option<wsx::tls::tokio_rustls::TlsAcceptor>, String> {
    let config = if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let store = wsx::tls::CertStore::new();
        let load = {
            let (cert, key) = (cert.clone(), key.clone());
            move |store: &wsx::tls::CertStore| -> Result<(), wsx::Error> {
                store.set_default(wsx::tls::load_certs(&cert)?, wsx::tls::load_key(&key)?)
            }
        };
        load(&store).map_err(|e| crate::diagnose::chain(&e))?;
        // SIGHUP: load the files again (renewed certificates); open
        // connections keep theirs, and a bad file keeps the old one.
        #[cfg(unix)]
        {
            let store = store.clone();
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| format!("cannot listen for SIGHUP: {e}"))?;
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match load(&store) {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!(
                            "SIGHUP: TLS certificate not reloaded, keeping the old one: {}",
                            crate::diagnose::chain(&e)
                        ),
                    }
                }
            });
        }
        store
            .server_config(None)
            .map_err(|e| crate::diagnose::chain(&e))?
    } else if args.tls_self_signed {
        let ip = listen.ip().to_string();
        let mut names = vec!["localhost", ip.as_str()];
        names.dedup();
        let dev = wsx::tls::self_signed(&names).map_err(|e| crate::diagnose::chain(&e))?;
        let path = std::env::temp_dir().join(format!("wsx-self-signed-{}.pem", listen.port()));
        std::fs::write(&path, &dev.cert_pem)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!(
            "wsx: self-signed certificate for {} (development only)\nwsx:   SHA-256 fingerprint {}\nwsx:   certificate: {} (clients: wsx connect --ca {} wss://localhost:{}/)",
            names.join(", "),
            dev.fingerprint,
            path.display(),
            path.display(),
            listen.port()
        );
        dev.config
    } else {
        return Ok(None);
    };
    // wsx's configurations offer h2 before http/1.1 in ALPN.
    let config = if http2 {
        config
    } else {
        let mut c = (*config).clone();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        std::sync::Arc::new(c)
    };
    Ok(Some(wsx::tls::tokio_rustls::TlsAcceptor::from(config)))
}
