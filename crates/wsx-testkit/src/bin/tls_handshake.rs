//! CPU time and bytes per TLS 1.3 handshake, by crypto provider and key
//! exchange group: what offering X25519MLKEM768 costs a wss:// server.
//!
//! Full handshakes (no resumption) between a rustls client and server in
//! memory, one thread, with the same ECDSA P-256 certificate for every
//! configuration; each side is timed separately (the time spent in its own
//! rustls calls) and the bytes each side sends are counted. Configurations
//! are interleaved round by round; the table shows medians over rounds and
//! each figure's ratio to ring's X25519 from the same round.
//!
//! ```text
//! cargo run --release -p wsx-testkit --bin tls_handshake -- [--handshakes 400] [--rounds 5]
//! ```

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsx::tls::rustls::{
    self,
    client::Resumption,
    crypto::{aws_lc_rs, ring, CryptoProvider, SupportedKxGroup},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName},
    ClientConnection, RootCertStore, ServerConnection,
};

struct Case {
    name: &'static str,
    provider: fn() -> CryptoProvider,
    group: &'static dyn SupportedKxGroup,
}

#[derive(Default, Clone, Copy)]
struct Sample {
    server: Duration,
    client: Duration,
    to_server: usize,
    to_client: usize,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "ring X25519 (wsx default)",
            provider: ring::default_provider,
            group: ring::kx_group::X25519,
        },
        Case {
            name: "aws-lc-rs X25519",
            provider: aws_lc_rs::default_provider,
            group: aws_lc_rs::kx_group::X25519,
        },
        Case {
            name: "aws-lc-rs X25519MLKEM768",
            provider: aws_lc_rs::default_provider,
            group: aws_lc_rs::kx_group::X25519MLKEM768,
        },
    ]
}

fn configs(
    case: &Case,
    cert: &CertificateDer<'static>,
    key: &PrivateKeyDer<'static>,
) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![case.group],
        ..(case.provider)()
    });
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.clone_key())
        .expect("certificate");
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = Resumption::disabled();
    (Arc::new(server), Arc::new(client))
}

/// Moves one side's pending TLS records to the other; returns the bytes.
fn pump(from: &mut dyn FnMut(&mut Vec<u8>) -> usize, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    from(buf)
}

fn handshake(
    server_cfg: &Arc<rustls::ServerConfig>,
    client_cfg: &Arc<rustls::ClientConfig>,
) -> Sample {
    let mut s = Sample::default();
    let t = Instant::now();
    let name = ServerName::try_from("localhost").expect("name");
    let mut client = ClientConnection::new(client_cfg.clone(), name).expect("client");
    s.client += t.elapsed();
    let t = Instant::now();
    let mut server = ServerConnection::new(server_cfg.clone()).expect("server");
    s.server += t.elapsed();
    let mut buf = Vec::with_capacity(16 << 10);
    for _ in 0..10 {
        // Client to server.
        let t = Instant::now();
        let n = pump(
            &mut |b| client.write_tls(b).expect("client write"),
            &mut buf,
        );
        s.client += t.elapsed();
        s.to_server += n;
        if n > 0 {
            let t = Instant::now();
            server.read_tls(&mut &buf[..]).expect("server read");
            server.process_new_packets().expect("server handshake");
            s.server += t.elapsed();
        }
        // Server to client.
        let t = Instant::now();
        let m = pump(
            &mut |b| server.write_tls(b).expect("server write"),
            &mut buf,
        );
        s.server += t.elapsed();
        s.to_client += m;
        if m > 0 {
            let t = Instant::now();
            client.read_tls(&mut &buf[..]).expect("client read");
            client.process_new_packets().expect("client handshake");
            s.client += t.elapsed();
        }
        if !client.is_handshaking() && !server.is_handshaking() && n == 0 && m == 0 {
            break;
        }
    }
    assert!(
        !client.is_handshaking() && !server.is_handshaking(),
        "handshake did not finish"
    );
    // One application byte each way proves the keys agree.
    client.writer().write_all(b"x").expect("write");
    buf.clear();
    client.write_tls(&mut buf).expect("write_tls");
    server.read_tls(&mut &buf[..]).expect("read_tls");
    server.process_new_packets().expect("process");
    let mut got = [0u8; 1];
    server
        .reader()
        .read_exact(&mut got)
        .expect("server reads the byte");
    assert_eq!(&got, b"x");
    s
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        })
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--handshakes", 400).max(1);
    let rounds = arg(&args, "--rounds", 5).max(1);
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let cases = cases();
    let cfgs: Vec<_> = cases.iter().map(|c| configs(c, &cert, &key)).collect();
    // per case, per round: (server µs, client µs, bytes to server, bytes to client)
    let mut per: Vec<Vec<[f64; 4]>> = vec![Vec::new(); cases.len()];
    for _ in 0..2 {
        handshake(&cfgs[0].0, &cfgs[0].1); // warm-up
    }
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..cases.len()).collect()
        } else {
            (0..cases.len()).rev().collect()
        };
        for &i in &order {
            let mut total = Sample::default();
            for _ in 0..n {
                let s = handshake(&cfgs[i].0, &cfgs[i].1);
                total.server += s.server;
                total.client += s.client;
                total.to_server = s.to_server;
                total.to_client = s.to_client;
            }
            per[i].push([
                total.server.as_secs_f64() * 1e6 / n as f64,
                total.client.as_secs_f64() * 1e6 / n as f64,
                total.to_server as f64,
                total.to_client as f64,
            ]);
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    println!(
        "TLS 1.3 full handshakes in memory, ECDSA P-256 certificate, {n} per configuration per round, {rounds} rounds (medians; ratios to ring X25519 within each round)\n"
    );
    println!("| provider, group | server µs/handshake | ratio | client µs/handshake | ratio | bytes client→server | bytes server→client |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, case) in cases.iter().enumerate() {
        let col = |k: usize| median(per[i].iter().map(|r| r[k]).collect());
        let ratio = |k: usize| {
            median(
                per[i]
                    .iter()
                    .zip(&per[0])
                    .map(|(a, b)| a[k] / b[k])
                    .collect(),
            )
        };
        println!(
            "| {} | {:.1} | {:.2} | {:.1} | {:.2} | {:.0} | {:.0} |",
            case.name,
            col(0),
            ratio(0),
            col(1),
            ratio(1),
            col(2),
            col(3)
        );
    }
    ExitCode::SUCCESS
}
