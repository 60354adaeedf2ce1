//! Opening a connection: TCP from a spread of loopback source addresses,
//! TLS for wss://, then the opening handshake and the deflate agreement.

use super::plan::Plan;
use bytes::BytesMut;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use wsx::wsx_proto::deflate::Negotiated;
use wsx::wsx_proto::handshake::{ClientHandshake, ExtensionOffer};
use wsx::MaybeTlsStream;

fn source_addr(plan: &Plan, i: usize) -> Option<SocketAddr> {
    let IpAddr::V4(ip) = plan.addr.ip() else {
        return None;
    };
    if !ip.is_loopback() {
        return None;
    }
    let n = match plan.args.source_ips {
        Some(n) => n.max(1) as usize,
        None => plan.args.connections.div_ceil(20_000),
    };
    if n <= 1 {
        return None;
    }
    let k = (i % n) as u8 + 1;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, k)), 0))
}

/// TCP, then TLS for wss:// (its handshake counts in `--mode handshake`).
async fn connect_tcp(plan: &Plan, i: usize) -> Result<MaybeTlsStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(src) = source_addr(plan, i) {
        socket.bind(src).map_err(|e| format!("bind {src}: {e}"))?;
    }
    let tcp = socket
        .connect(plan.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", plan.addr))?;
    let _ = tcp.set_nodelay(true);
    match &plan.tls {
        None => Ok(MaybeTlsStream::Plain(tcp)),
        Some(config) => wsx::tls::handshake(config.clone(), plan.req.host(), tcp)
            .await
            .map(|s| MaybeTlsStream::Tls(Box::new(s)))
            .map_err(|e| crate::diagnose::one_line(&e)),
    }
}

pub(super) async fn open_raw(plan: &Plan, i: usize) -> Result<Opened, String> {
    let _turn = plan.opening.acquire().await.map_err(|e| e.to_string())?;
    Ok((
        connect_tcp(plan, i).await?,
        BytesMut::with_capacity(64 * 1024),
        None,
    ))
}

/// The stream, bytes that came after the 101, and the deflate agreement.
pub(super) type Opened = (MaybeTlsStream, BytesMut, Option<Negotiated>);

/// With --http2: socket `i` as a stream of a shared HTTP/2 connection
/// (as many sockets per connection as the server allows).
async fn open_h2(plan: &Plan, i: usize) -> Result<Opened, String> {
    let (config, conns) = plan.h2.as_ref().expect("--http2");
    let h2 = {
        let mut conns = conns.lock().await;
        let per = conns.first().map_or(usize::MAX, |c| c.max_streams().max(1));
        let k = i / per.min(plan.args.connections.max(1));
        while conns.len() <= k {
            let stream = connect_tcp(plan, conns.len()).await?;
            if let MaybeTlsStream::Tls(t) = &stream {
                if t.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err("--http2: the server did not agree to HTTP/2 in ALPN".into());
                }
            }
            let c = wsx::http2::Http2Connection::handshake(stream, &plan.req, config)
                .await
                .map_err(|e| format!("--http2: {}", crate::diagnose::one_line(&e)))?;
            if !c.supports_websockets() {
                return Err("--http2: the server speaks HTTP/2 but does not advertise RFC 8441 (SETTINGS_ENABLE_CONNECT_PROTOCOL)".into());
            }
            plan.stats
                .h2_connections
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            conns.push(c);
        }
        conns[k].clone()
    };
    let (stream, done) = h2
        .open_stream(&plan.req, config)
        .await
        .map_err(|e| crate::diagnose::one_line(&e))?;
    let negotiated = deflate_agreement(plan, &done.extensions)?;
    Ok((
        MaybeTlsStream::Http2(Box::new(stream)),
        BytesMut::with_capacity(64 * 1024),
        negotiated,
    ))
}

pub(super) async fn open(plan: &Plan, i: usize) -> Result<Opened, String> {
    let _turn = plan.opening.acquire().await.map_err(|e| e.to_string())?;
    if plan.h2.is_some() {
        return open_h2(plan, i).await;
    }
    let mut tcp = connect_tcp(plan, i).await?;
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let (mut hs, request) = ClientHandshake::new(&plan.req, key);
    tcp.write_all(&request).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(hs.handle_eof().to_string());
        }
        if let Some(done) = hs.handle_data(&buf[..n]).map_err(|e| e.to_string())? {
            let mut rest = BytesMut::with_capacity(64 * 1024);
            rest.extend_from_slice(&done.leftover);
            let negotiated = deflate_agreement(plan, &done.extensions)?;
            return Ok((tcp, rest, negotiated));
        }
    }
}

/// With `--deflate`, the server's acceptance of our offer (required); the
/// first one is kept for the report.
fn deflate_agreement(
    plan: &Plan,
    extensions: &[ExtensionOffer],
) -> Result<Option<Negotiated>, String> {
    let Some(d) = &plan.deflate else {
        return Ok(None);
    };
    let n = match d.negotiate_client(extensions) {
        Ok(Some(n)) => n,
        Ok(None) => {
            return Err("--deflate: the server declined permessage-deflate \
                        (no permessage-deflate in its Sec-WebSocket-Extensions)"
                .into())
        }
        Err(e) => return Err(format!("--deflate: {e}")),
    };
    let _ = plan.stats.deflate.set(n.params);
    Ok(Some(n))
}
