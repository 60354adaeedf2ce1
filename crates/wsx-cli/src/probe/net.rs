//! The steps that make the stream the handshake runs on: DNS, TCP (or the
//! proxy's tunnel, which does both), then TLS for wss://. Each is timed
//! and limited by `--timeout`; a failure says what happened and why.

use super::cert::tls_lines;
use super::record::{ms_text, secs, Failure, Probe};
use crate::diagnose;
use std::io;
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use wsx::wsx_proto::handshake::ClientRequest;
use wsx::MaybeTlsStream;

impl Probe {
    // ---- DNS -------------------------------------------------------------------

    pub(super) async fn resolve(
        &mut self,
        req: &ClientRequest,
    ) -> Result<Vec<SocketAddr>, Failure> {
        let host = req.host().to_string();
        let port = req.port();
        let start = Instant::now();
        let found = timeout(self.timeout, tokio::net::lookup_host((host.as_str(), port))).await;
        let elapsed = start.elapsed();
        let addrs = match found {
            Err(_) => {
                return Err(Failure::new(
                    "dns",
                    format!(
                        "the DNS step timed out: resolving {host} took longer than {}",
                        secs(self.timeout)
                    ),
                )
                .hint("the resolver is slow or unreachable: check the network, a VPN, /etc/resolv.conf"))
            }
            Ok(Err(e)) => {
                return Err(Failure::new("dns", format!("DNS failure: cannot resolve {host}: {e}"))
                    .hint(format!(
                        "check the host name for typos; does it resolve elsewhere (`getent hosts {host}`)? Otherwise the machine is offline or its DNS is broken"
                    )))
            }
            Ok(Ok(it)) => {
                let mut v: Vec<SocketAddr> = Vec::new();
                for a in it {
                    if !v.contains(&a) {
                        v.push(a);
                    }
                }
                v
            }
        };
        self.timings.dns = Some(elapsed);
        if addrs.is_empty() {
            return Err(Failure::new(
                "dns",
                format!("DNS failure: {host} resolved to no addresses"),
            ));
        }
        self.addresses = addrs.clone();
        let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        self.say(format!(
            "* dns: {host} -> {} ({})",
            list.join(", "),
            ms_text(elapsed)
        ));
        Ok(addrs)
    }

    // ---- proxy -----------------------------------------------------------------

    pub(super) async fn tunnel(
        &mut self,
        proxy: &wsx::client::Proxy,
        req: &ClientRequest,
    ) -> Result<TcpStream, Failure> {
        let start = Instant::now();
        let (host, port) = (req.host(), req.port());
        match timeout(self.timeout, proxy.tunnel(host, port)).await {
            Ok(Ok(tcp)) => {
                let elapsed = start.elapsed();
                self.timings.tcp = Some(elapsed);
                self.say(format!(
                    "* proxy: tunnel to {host}:{port} through {proxy} ({})",
                    ms_text(elapsed)
                ));
                Ok(tcp)
            }
            Ok(Err(e)) => {
                Err(Failure::new("proxy", diagnose::chain(&e)).hint_if(diagnose::hint(&e)))
            }
            Err(_) => Err(Failure::new(
                "proxy",
                format!(
                    "{proxy} did not open a tunnel within {}",
                    ms_text(self.timeout)
                ),
            )),
        }
    }

    // ---- TLS -------------------------------------------------------------------

    pub(super) async fn tls(
        &mut self,
        tcp: TcpStream,
        req: &ClientRequest,
        config: Option<std::sync::Arc<wsx::tls::rustls::ClientConfig>>,
        http2: bool,
    ) -> Result<MaybeTlsStream, Failure> {
        let mut config =
            crate::request_args::tls_or_default(config).map_err(|e| Failure::new("tls", e))?;
        if http2 {
            let mut c = (*config).clone();
            c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            config = std::sync::Arc::new(c);
        }
        let start = Instant::now();
        let host = req.host().to_string();
        let stream = match timeout(self.timeout, wsx::tls::handshake(config, &host, tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(Failure::new("tls", diagnose::chain(&e)).hint(
                    diagnose::hint(&e).unwrap_or_else(|| {
                        "check the URL's host name, the server's certificate chain (intermediates included), this machine's clock".into()
                    }),
                ))
            }
            Err(_) => {
                return Err(Failure::new(
                    "tls",
                    format!("no TLS handshake within {}", ms_text(self.timeout)),
                )
                .hint("the port may not speak TLS (a plain ws:// server?), or a firewall swallows it"))
            }
        };
        let elapsed = start.elapsed();
        self.timings.tls = Some(elapsed);
        for line in tls_lines(stream.get_ref().1, elapsed) {
            self.say(line);
        }
        Ok(MaybeTlsStream::Tls(Box::new(stream)))
    }

    // ---- TCP -------------------------------------------------------------------

    pub(super) async fn connect(&mut self, addrs: &[SocketAddr]) -> Result<TcpStream, Failure> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut errors: Vec<(SocketAddr, io::Error)> = Vec::new();
        for &addr in addrs {
            match timeout_at(deadline, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let elapsed = start.elapsed();
                    let _ = stream.set_nodelay(true);
                    self.timings.tcp = Some(elapsed);
                    self.connected = Some(addr);
                    self.say(format!("* tcp: connected to {addr} ({})", ms_text(elapsed)));
                    return Ok(stream);
                }
                Ok(Err(e)) => {
                    self.say(format!("* tcp: {addr}: {e}"));
                    errors.push((addr, e));
                }
                Err(_) => {
                    return Err(Failure::new(
                        "tcp",
                        format!(
                            "the TCP step timed out: connecting to {addr} took longer than {}",
                            secs(self.timeout)
                        ),
                    )
                    .hint("no answer at all, not even a refusal: a firewall dropping packets, a wrong address, or the host is down"));
                }
            }
        }
        Err(self.connect_failed(&errors))
    }

    /// Every address failed: refused everywhere (nothing listens), or the
    /// first other error, with its likely cause.
    fn connect_failed(&self, errors: &[(SocketAddr, io::Error)]) -> Failure {
        let hostport = format!(
            "{}:{}",
            self.host.as_deref().unwrap_or("?"),
            self.port.unwrap_or(0)
        );
        let tried: Vec<String> = errors.iter().map(|(a, _)| a.to_string()).collect();
        if errors
            .iter()
            .all(|(_, e)| e.kind() == io::ErrorKind::ConnectionRefused)
        {
            return Failure::new(
                "tcp",
                format!("connection refused by {}", tried.join(", ")),
            )
            .hint(format!(
                "nothing is listening on {hostport}: is the server running, and on this port? (a server bound to 127.0.0.1 only is not reachable through another address)"
            ));
        }
        let (addr, e) = errors
            .iter()
            .find(|(_, e)| e.kind() != io::ErrorKind::ConnectionRefused)
            .expect("a non-refused error");
        let failure = Failure::new("tcp", format!("cannot connect to {addr}: {e}"));
        match e.kind() {
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => failure.hint(
                "no route to the host: a wrong address, the host is down, or the network (VPN) is",
            ),
            io::ErrorKind::PermissionDenied => {
                failure.hint("a local firewall or policy forbids this connection")
            }
            _ => failure,
        }
    }
}
