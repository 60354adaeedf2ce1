//! wss:// for `wsx serve`: certificate files (reloaded on SIGHUP) or a
//! self-signed certificate for development.

use super::ServeArgs;
use std::net::SocketAddr;

/// The TLS acceptor for `--tls-cert/--tls-key` or `--tls-self-signed`.
pub fn tls_acceptor(
    args: &ServeArgs,
    listen: SocketAddr,
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
    Ok(Some(wsx::tls::tokio_rustls::TlsAcceptor::from(config)))
}
