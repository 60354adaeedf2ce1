//! `wsx probe --http2`: HTTP/2 on the connection (its SETTINGS), then the
//! WebSocket's extended CONNECT (RFC 8441), shown as pseudo-headers.

use super::record::{ms_text, Failure, Probe};
use std::time::Instant;
use tokio::time::timeout;
use wsx::client::{ClientConfig, ClientRequest, Handshaken};
use wsx::http2::Http2Connection;
use wsx::{MaybeTlsStream, WebSocket};

impl Probe {
    /// HTTP/2's preface and SETTINGS on `stream`, then the CONNECT.
    pub(super) async fn http2(
        &mut self,
        stream: MaybeTlsStream,
        req: &ClientRequest,
        config: &ClientConfig,
    ) -> Result<WebSocket<MaybeTlsStream>, Failure> {
        let start = Instant::now();
        let h2 = match timeout(self.timeout, Http2Connection::handshake(stream, req, config)).await {
            Ok(Ok(h2)) => h2,
            Ok(Err(e)) => {
                return Err(Failure::new("http2", crate::diagnose::chain(&e)).hint(
                    "the server does not speak HTTP/2 here: with ws://, HTTP/2 needs prior knowledge on the server (wsx serve --h2c); probe without --http2 for HTTP/1.1",
                ))
            }
            Err(_) => {
                return Err(Failure::new(
                    "http2",
                    format!("no HTTP/2 SETTINGS within {}", ms_text(self.timeout)),
                )
                .hint("the server does not speak HTTP/2 with prior knowledge; probe without --http2"))
            }
        };
        self.http_version = Some("2");
        self.say(format!(
            "http2: SETTINGS in {}: SETTINGS_ENABLE_CONNECT_PROTOCOL {}, max concurrent streams {}",
            ms_text(start.elapsed()),
            if h2.supports_websockets() {
                "1"
            } else {
                "absent"
            },
            h2.max_streams()
        ));
        if !h2.supports_websockets() {
            return Err(Failure::new(
                "http2",
                "the server speaks HTTP/2 but did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): it cannot carry WebSockets over HTTP/2",
            )
            .hint("browsers open their WebSockets over HTTP/1.1 on such a server; probe without --http2 to check that path"));
        }
        let (_, connect) = wsx::wsx_proto::handshake::ClientHandshake::extended_connect(req);
        let uri = connect.uri();
        let mut shown = vec![
            (":method".to_string(), "CONNECT".to_string()),
            (":protocol".to_string(), "websocket".to_string()),
            (
                ":scheme".to_string(),
                uri.scheme_str().unwrap_or("").to_string(),
            ),
            (
                ":authority".to_string(),
                uri.authority().map_or(String::new(), |a| a.to_string()),
            ),
            (
                ":path".to_string(),
                uri.path_and_query().map_or("/".into(), |p| p.to_string()),
            ),
        ];
        for (k, v) in connect.headers() {
            shown.push((
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
        for (k, v) in &shown {
            self.say(format!("> {k}: {v}"));
        }
        self.request_line = Some("CONNECT :protocol=websocket HTTP/2".into());
        self.request_headers = shown;
        let start = Instant::now();
        let (ws, done) = match timeout(self.timeout, h2.websocket(req, config)).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                return Err(Failure::new("http", crate::diagnose::chain(&e))
                    .hint_if(crate::diagnose::hint(&e)))
            }
            Err(_) => {
                return Err(Failure::new(
                    "http",
                    format!("no answer to the CONNECT within {}", ms_text(self.timeout)),
                ))
            }
        };
        self.timings.http = Some(start.elapsed());
        self.show_h2_answer(&done);
        Ok(ws)
    }

    fn show_h2_answer(&mut self, done: &Handshaken) {
        self.say(format!("< :status: {}", done.response.status().as_u16()));
        for (k, v) in done.response.headers() {
            self.say(format!("< {k}: {}", String::from_utf8_lossy(v.as_bytes())));
        }
        self.show_handshaken(done);
    }
}
