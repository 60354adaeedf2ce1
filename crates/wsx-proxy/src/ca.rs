//! The proxy's own certificate authority, to terminate wss:// from
//! clients: created on first use (a key and a self-signed CA certificate
//! in a directory of the user's), it issues a certificate for each name a
//! client asks for (SNI) on the fly. Trusting its `ca.pem` is for testing:
//! whoever holds `ca-key.pem` can impersonate any site to that client.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A local CA and the certificates it issued so far.
pub struct LocalCa {
    dir: PathBuf,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    /// One key for every issued certificate (they are for testing).
    leaf_key: KeyPair,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The CA certificate's fields: the same each time, so that a certificate
/// re-made from the stored key names the same issuer.
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, "wsx proxy local CA (testing only)");
    p.distinguished_name.push(DnType::OrganizationName, "wsx");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// Days since 1970-01-01 as (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

impl LocalCa {
    /// The default directory: `$XDG_DATA_HOME/wsx/proxy-ca` (or
    /// `~/.local/share/wsx/proxy-ca`).
    pub fn default_dir() -> PathBuf {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("wsx/proxy-ca")
    }

    /// The CA in `dir` (`ca.pem`, `ca-key.pem`), created there if missing;
    /// `true` when it was created now.
    ///
    /// # Errors
    /// The directory or files cannot be written or read.
    pub fn load_or_create(dir: &Path) -> Result<(LocalCa, bool), String> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        let created = !key_path.exists();
        let ca_key = if created {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let key = KeyPair::generate().map_err(|e| e.to_string())?;
            write_private(&key_path, &key.serialize_pem())?;
            key
        } else {
            let pem = std::fs::read_to_string(&key_path)
                .map_err(|e| format!("{}: {e}", key_path.display()))?;
            KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", key_path.display()))?
        };
        let ca_cert = ca_params()
            .self_signed(&ca_key)
            .map_err(|e| e.to_string())?;
        if created || !cert_path.exists() {
            std::fs::write(&cert_path, ca_cert.pem())
                .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        }
        Ok((
            LocalCa {
                dir: dir.to_path_buf(),
                ca_cert,
                ca_key,
                leaf_key: KeyPair::generate().map_err(|e| e.to_string())?,
                issued: Mutex::new(HashMap::new()),
                provider: Arc::new(rustls::crypto::ring::default_provider()),
            },
            created,
        ))
    }

    /// The CA certificate's file (what clients trust).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for `name` (a DNS name or an IP address), issued now
    /// or earlier: valid from yesterday for 30 days.
    fn issue(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = issued.get(name) {
            return Some(c.clone());
        }
        let names = if name == "localhost" {
            vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ]
        } else {
            vec![name.to_string()]
        };
        let mut p = CertificateParams::new(names).ok()?;
        p.distinguished_name.push(DnType::CommonName, name);
        let today = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400) as i64;
        let (y, m, d) = civil(today - 1);
        p.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = civil(today + 30);
        p.not_after = rcgen::date_time_ymd(y, m, d);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p
            .signed_by(&self.leaf_key, &self.ca_cert, &self.ca_key)
            .ok()?;
        let chain = vec![
            cert.der().clone(),
            CertificateDer::from(self.ca_cert.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let ck = Arc::new(CertifiedKey::from_der(chain, key, &self.provider).ok()?);
        issued.insert(name.to_string(), ck.clone());
        Some(ck)
    }

    /// A TLS server configuration whose certificates this CA issues (ALPN
    /// `http/1.1`).
    ///
    /// # Errors
    /// rustls refused the configuration.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// How to trust it, in words, for the start-up message.
    pub fn how_to_trust(&self) -> String {
        let p = self.cert_path();
        let p = p.display();
        format!(
            "trust it for testing only: wsx connect --ca {p} wss://...; curl --cacert {p}; Python: SSL_CERT_FILE={p}; Node: NODE_EXTRA_CA_CERTS={p}; Chromium: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n wsx-proxy -i {p}"
        )
    }
}

impl rustls::server::ResolvesServerCert for LocalCa {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // No SNI (an IP address, or a client that sends none): localhost's.
        let name = hello
            .server_name()
            .unwrap_or("localhost")
            .to_ascii_lowercase();
        self.issue(&name)
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(20_793), (2026, 12, 6));
    }

    #[test]
    fn the_ca_is_kept_and_its_certificates_chain_to_the_stored_one() {
        let dir = std::env::temp_dir().join(format!("wsx-ca-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, created) = LocalCa::load_or_create(&dir).unwrap();
        assert!(created);
        let pem = std::fs::read_to_string(a.cert_path()).unwrap();
        let (b, created) = LocalCa::load_or_create(&dir).unwrap();
        assert!(!created);
        assert_eq!(
            std::fs::read_to_string(b.cert_path()).unwrap(),
            pem,
            "the CA file is not rewritten"
        );
        // A certificate the reloaded CA issues verifies against the stored ca.pem.
        let leaf = b.issue("example.test").unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile_certs(&pem) {
            roots.add(c).unwrap();
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            b.provider.clone(),
        )
        .build()
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from("example.test").unwrap();
        verifier
            .verify_server_cert(
                &leaf.cert[0],
                &leaf.cert[1..],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap();
        let other = rustls::pki_types::ServerName::try_from("other.test").unwrap();
        assert!(verifier
            .verify_server_cert(
                &leaf.cert[0],
                &leaf.cert[1..],
                &other,
                &[],
                rustls::pki_types::UnixTime::now()
            )
            .is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("ca-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn rustls_pemfile_certs(pem: &str) -> Vec<CertificateDer<'static>> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| c.unwrap())
            .collect()
    }
}
