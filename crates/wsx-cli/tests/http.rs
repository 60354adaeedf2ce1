//! Plain HTTP of `wsx serve` through the binary: static files with ranges,
//! keep-alive, conditional requests and compression; `/metrics` read by a
//! Prometheus text-format parser.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

mod common;

use common::serve;

/// A response read off a kept-alive connection (by its Content-Length).
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_response(r: &mut BufReader<TcpStream>, head_only: bool) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only {
        return resp;
    }
    if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2]; // and its CRLF
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..n]);
        }
        return resp;
    }
    let len: usize = resp
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    resp.body = vec![0; len];
    r.read_exact(&mut resp.body).unwrap();
    resp
}

fn request(
    s: &mut TcpStream,
    r: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    extra: &str,
) -> Response {
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n"
    )
    .unwrap();
    read_response(r, method == "HEAD")
}

#[test]
fn static_files_ranges_keep_alive_conditional_requests_and_compression() {
    let dir = std::env::temp_dir().join(format!("wsx-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("data.bin"), &data).unwrap();
    let text = "a line of text that compresses well\n".repeat(200);
    std::fs::write(dir.join("notes.txt"), &text).unwrap();
    let server = serve(&["--static", dir.to_str().unwrap()]);

    // Every request below goes over this one connection.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());

    // curl -r 0-99: 206 with the first 100 bytes.
    let part = request(&mut s, &mut r, "GET", "/data.bin", "Range: bytes=0-99\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 0-99/1000"));
    assert_eq!(part.body, &data[..100]);
    let tail = request(&mut s, &mut r, "GET", "/data.bin", "Range: bytes=-10\r\n");
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &data[990..]);
    let beyond = request(&mut s, &mut r, "GET", "/data.bin", "Range: bytes=5000-\r\n");
    assert_eq!(beyond.status, 416);

    // The whole file, then a conditional request with its validator: 304.
    let whole = request(&mut s, &mut r, "GET", "/data.bin", "");
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, data);
    let modified = whole
        .header("last-modified")
        .expect("a Last-Modified validator")
        .to_string();
    let again = request(
        &mut s,
        &mut r,
        "GET",
        "/data.bin",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(again.status, 304, "{:?}", again.headers);
    assert!(again.body.is_empty());

    // HEAD: the headers of the GET, no body.
    let head = request(&mut s, &mut r, "HEAD", "/data.bin", "");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1000"));

    // Compression for clients that accept it; none for those that do not.
    let gz = request(
        &mut s,
        &mut r,
        "GET",
        "/notes.txt",
        "Accept-Encoding: gzip\r\n",
    );
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.body.len() < text.len() / 4, "{} bytes", gz.body.len());
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, text);
    let plain = request(&mut s, &mut r, "GET", "/notes.txt", "");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, text.as_bytes());

    // A missing file: 404, and the connection still serves.
    assert_eq!(request(&mut s, &mut r, "GET", "/nope", "").status, 404);
    let page = request(&mut s, &mut r, "GET", "/", "");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("new WebSocket("));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text() {
    let server = serve(&[]);
    let mut ws = wsx::connect(&format!("ws://127.0.0.1:{}/", server.port))
        .await
        .unwrap();
    ws.send(wsx::Message::text("hello")).await.unwrap();
    let _ = ws.recv().await.unwrap();
    ws.close(None).await.unwrap();
    while let Ok(Some(_)) = ws.recv().await {}
    tokio::time::sleep(Duration::from_millis(100)).await;
    let port = server.port;
    let body = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let resp = request(&mut s, &mut r, "GET", "/metrics", "");
        assert_eq!(resp.status, 200);
        assert!(resp
            .header("content-type")
            .is_some_and(|t| t.contains("openmetrics-text")));
        String::from_utf8(resp.body).unwrap()
    })
    .await
    .unwrap();
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("no sample {name} {label:?} in\n{body}"))
    };
    assert_eq!(value("wsx_connections_open", None), 0.0);
    assert_eq!(value("wsx_connections_total", None), 1.0);
    assert_eq!(value("wsx_messages_received_total", None), 1.0);
    assert_eq!(value("wsx_messages_sent_total", None), 1.0);
    assert_eq!(value("wsx_close_codes_total", Some(("code", "1005"))), 1.0);
    assert!(scrape.docs.contains_key("wsx_pongs_received"), "{body}");
}
