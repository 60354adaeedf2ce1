//! Through proxies started by the test: a small HTTP CONNECT proxy (with and
//! without basic auth) and a small SOCKS5 proxy, for ws:// and wss://.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsx::{
    client::{ClientConfig, ClientRequest, Proxy},
    Message, Server,
};

async fn echo_server() -> SocketAddr {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(|mut ws, _| async move {
        while let Ok(Some(m)) = ws.recv().await {
            if matches!(m, Message::Text(_) | Message::Binary(_)) && ws.send(m).await.is_err() {
                break;
            }
        }
    }));
    addr
}

/// An HTTP CONNECT proxy; `auth` is the required `user:pass`. Counts tunnels.
async fn connect_proxy(auth: Option<&'static str>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8(head).unwrap();
                let target = head.split_whitespace().nth(1).unwrap().to_string();
                assert!(head.starts_with("CONNECT "), "{head}");
                if let Some(auth) = auth {
                    use base64::Engine as _;
                    let want = format!(
                        "proxy-authorization: basic {}",
                        base64::engine::general_purpose::STANDARD.encode(auth)
                    );
                    if !head
                        .to_ascii_lowercase()
                        .contains(&want.to_ascii_lowercase())
                    {
                        let _ = client
                            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                }
                let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                count.fetch_add(1, Relaxed);
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, tunnels)
}

/// A SOCKS5 proxy (no auth, or user/pass), IPv4 and domain targets.
async fn socks5_proxy(
    auth: Option<(&'static str, &'static str)>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    tokio::spawn(async move {
        loop {
            let (mut c, _) = listener.accept().await.unwrap();
            let count = count.clone();
            tokio::spawn(async move {
                let mut hdr = [0u8; 2];
                c.read_exact(&mut hdr).await.unwrap();
                let mut methods = vec![0u8; usize::from(hdr[1])];
                c.read_exact(&mut methods).await.unwrap();
                match auth {
                    None => c.write_all(&[5, 0]).await.unwrap(),
                    Some((u, p)) => {
                        if !methods.contains(&2) {
                            c.write_all(&[5, 0xff]).await.unwrap();
                            return;
                        }
                        c.write_all(&[5, 2]).await.unwrap();
                        let mut v = [0u8; 2];
                        c.read_exact(&mut v).await.unwrap();
                        let mut user = vec![0u8; usize::from(v[1])];
                        c.read_exact(&mut user).await.unwrap();
                        let mut l = [0u8; 1];
                        c.read_exact(&mut l).await.unwrap();
                        let mut pass = vec![0u8; usize::from(l[0])];
                        c.read_exact(&mut pass).await.unwrap();
                        let ok = user == u.as_bytes() && pass == p.as_bytes();
                        c.write_all(&[1, if ok { 0 } else { 1 }]).await.unwrap();
                        if !ok {
                            return;
                        }
                    }
                }
                let mut req = [0u8; 4];
                c.read_exact(&mut req).await.unwrap();
                let host = match req[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        c.read_exact(&mut ip).await.unwrap();
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    3 => {
                        let mut l = [0u8; 1];
                        c.read_exact(&mut l).await.unwrap();
                        let mut name = vec![0u8; usize::from(l[0])];
                        c.read_exact(&mut name).await.unwrap();
                        String::from_utf8(name).unwrap()
                    }
                    other => panic!("address type {other}"),
                };
                let mut port = [0u8; 2];
                c.read_exact(&mut port).await.unwrap();
                let port = u16::from_be_bytes(port);
                let Ok(mut up) = TcpStream::connect((host.as_str(), port)).await else {
                    c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
                    return;
                };
                count.fetch_add(1, Relaxed);
                c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
            });
        }
    });
    (addr, tunnels)
}

async fn round_trip(url: &str, proxy: Proxy) -> wsx::Result<()> {
    let config = ClientConfig::default().proxy(Some(proxy));
    let (mut ws, _) = wsx::client::connect_with(&ClientRequest::new(url).unwrap(), &config).await?;
    ws.send(Message::text("through the proxy")).await?;
    assert_eq!(ws.recv().await?, Some(Message::text("through the proxy")));
    ws.close(None).await?;
    while ws.recv().await?.is_some() {}
    Ok(())
}

#[tokio::test]
async fn http_connect_proxy_with_and_without_auth() {
    let echo = echo_server().await;
    let url = format!("ws://localhost:{}/", echo.port());
    let (open, tunnels) = connect_proxy(None).await;
    round_trip(&url, Proxy::parse(&format!("http://{open}")).unwrap())
        .await
        .unwrap();
    assert_eq!(tunnels.load(Relaxed), 1);

    let (locked, tunnels) = connect_proxy(Some("alice:s3cret")).await;
    round_trip(
        &url,
        Proxy::parse(&format!("http://alice:s3cret@{locked}")).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(tunnels.load(Relaxed), 1);
    let err = round_trip(&url, Proxy::parse(&format!("http://{locked}")).unwrap())
        .await
        .unwrap_err();
    assert!(err.is_proxy(), "{err}");
    assert!(err.to_string().contains("407"), "{err}");
    let err = round_trip(
        &url,
        Proxy::parse(&format!("http://alice:wrong@{locked}")).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("credentials were refused"),
        "{err}"
    );
    assert_eq!(tunnels.load(Relaxed), 1);
}

#[tokio::test]
async fn socks5_proxy_with_and_without_auth() {
    let echo = echo_server().await;
    let (open, tunnels) = socks5_proxy(None).await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("ws://{host}:{}/", echo.port());
        round_trip(&url, Proxy::parse(&format!("socks5://{open}")).unwrap())
            .await
            .unwrap();
    }
    assert_eq!(tunnels.load(Relaxed), 2);
    let (locked, tunnels) = socks5_proxy(Some(("bob", "pw"))).await;
    let url = format!("ws://localhost:{}/", echo.port());
    round_trip(
        &url,
        Proxy::parse(&format!("socks5://bob:pw@{locked}")).unwrap(),
    )
    .await
    .unwrap();
    let err = round_trip(&url, Proxy::parse(&format!("socks5://{locked}")).unwrap())
        .await
        .unwrap_err();
    assert!(
        err.is_proxy() && err.to_string().contains("authentication"),
        "{err}"
    );
    let err = round_trip(
        &url,
        Proxy::parse(&format!("socks5://bob:nope@{locked}")).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("refused the user name"), "{err}");
    assert_eq!(tunnels.load(Relaxed), 1);
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_through_a_connect_proxy() {
    // TLS end to end through the tunnel: the proxy sees only ciphertext.
    let dev = wsx::tls::self_signed(&["localhost"]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = wsx::tls::tokio_rustls::TlsAcceptor::from(dev.config.clone());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut ws = wsx::accept(tls).await.unwrap();
        while let Ok(Some(m)) = ws.recv().await {
            if matches!(m, Message::Text(_)) && ws.send(m).await.is_err() {
                break;
            }
        }
    });
    let (proxy, tunnels) = connect_proxy(None).await;
    let config = ClientConfig::default()
        .proxy(Some(Proxy::parse(&format!("http://{proxy}")).unwrap()))
        .tls(Some(
            wsx::tls::TlsClientOptions {
                danger_accept_invalid_certs: true,
                ..Default::default()
            }
            .build()
            .unwrap(),
        ));
    let url = format!("wss://localhost:{port}/");
    let (mut ws, _) = wsx::client::connect_with(&ClientRequest::new(&url).unwrap(), &config)
        .await
        .unwrap();
    assert!(ws.get_ref().tls().is_some());
    ws.send(Message::text("tls in a tunnel")).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Some(Message::text("tls in a tunnel"))
    );
    assert_eq!(tunnels.load(Relaxed), 1);
}

#[tokio::test]
async fn unreachable_proxy_is_named() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let err = round_trip(
        "ws://localhost:1/",
        Proxy::parse(&format!("http://{addr}")).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.is_proxy(), "{err}");
    assert!(
        err.to_string().contains("cannot connect to the proxy"),
        "{err}"
    );
}
