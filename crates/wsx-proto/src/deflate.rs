//! permessage-deflate (RFC 7692): negotiation (both roles, all four
//! parameters) and the per-connection codec the [`crate::Connection`]
//! calls through its extension seam.
//!
//! Safety against bombs: inflation is bounded by the connection's
//! `max_message_size` and stops as soon as the limit is crossed, so a few
//! kilobytes that would inflate to gigabytes cost at most the limit.

use crate::handshake::ExtensionOffer;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The 4 bytes a sync flush ends with; removed from each compressed message
/// and appended again before inflating (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The default compression level, chosen by measurement (`bench/compare
/// --only deflate --deflate-level N`, JSON-like echoes, 2026-12-06): level 3
/// costs 0.59x (1 KiB) and 0.53x (16 KiB) the server CPU per message of zlib's
/// default 6 for 6% and 9% more bytes on the wire; level 1 halves the CPU
/// again but sends 34% and 59% more than 6. README "Compression" has the table.
pub const DEFAULT_LEVEL: u32 = 3;

/// What this endpoint offers (client) or accepts (server).
///
/// Memory: a compressor holds about `2^(window_bits + 3)` bytes plus a
/// fixed ~200 KiB of hash and buffer tables at window 15 (zlib's memory
/// level 8; flate2 does not expose another); an inflater about
/// `2^window_bits` plus ~10 KiB. Both are created on the first message that
/// needs them, so connections that only exchange small messages (below
/// `threshold`) pay nothing.
///
/// ```
/// use wsx_proto::deflate::DeflateConfig;
/// let c = DeflateConfig { window_bits: 12, no_context_takeover: true, ..Default::default() };
/// assert_eq!(c.offer(), "permessage-deflate; client_max_window_bits=12; client_no_context_takeover");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Compression level, 0 (store) to 9 (smallest). Default
    /// [`DEFAULT_LEVEL`] (3).
    pub level: u32,
    /// Our compressor's LZ77 window, 2^bits bytes, 8-15. Default 15. A
    /// smaller window uses less memory and finds fewer repeats.
    pub window_bits: u8,
    /// Ask the peer to use a window of at most 2^bits (8-15; 15: no
    /// request). Lowers our inflater's memory.
    pub peer_window_bits: u8,
    /// Reset our compressor after every message: lower ratio on similar
    /// messages, but no state carried between them. Default off.
    pub no_context_takeover: bool,
    /// Ask the peer to reset its compressor after every message, so our
    /// inflater carries no state between messages. Default off.
    pub peer_no_context_takeover: bool,
    /// Messages shorter than this go uncompressed: compressing a few bytes
    /// costs CPU and saves nothing. Default 64.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            level: DEFAULT_LEVEL,
            window_bits: 15,
            peer_window_bits: 15,
            no_context_takeover: false,
            peer_no_context_takeover: false,
            threshold: 64,
        }
    }
}

/// The agreed parameters, as they appear in the response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server's window is at most 2^bits (15 when not limited).
    pub server_max_window_bits: u8,
    /// The client's window is at most 2^bits (15 when not limited).
    pub client_max_window_bits: u8,
}

/// permessage-deflate as negotiated for one connection: the parameters,
/// and this endpoint's settings for its own compressor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The agreed parameters.
    pub params: DeflateParams,
    /// The `Sec-WebSocket-Extensions` value of the server's response.
    pub response: String,
    server: bool,
    level: u32,
    threshold: usize,
    /// Our compressor's window (may be below what was agreed).
    send_window_bits: u8,
}

impl Negotiated {
    /// The receiving end's view of `params` (a relay inflating what one
    /// side sends: `server` is true for what the client sends).
    pub(crate) fn for_receiver(params: DeflateParams, server: bool) -> Negotiated {
        Negotiated {
            params,
            response: String::new(),
            server,
            level: 6,
            threshold: 0,
            send_window_bits: if server {
                params.server_max_window_bits
            } else {
                params.client_max_window_bits
            },
        }
    }

    fn send_no_context_takeover(&self) -> bool {
        if self.server {
            self.params.server_no_context_takeover
        } else {
            self.params.client_no_context_takeover
        }
    }
    fn recv_no_context_takeover(&self) -> bool {
        if self.server {
            self.params.client_no_context_takeover
        } else {
            self.params.server_no_context_takeover
        }
    }
    fn recv_window_bits(&self) -> u8 {
        if self.server {
            self.params.client_max_window_bits
        } else {
            self.params.server_max_window_bits
        }
    }
}

/// The server's response to a permessage-deflate offer was not acceptable
/// (RFC 7692 §5, §7.1): the client fails the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid permessage-deflate response from the server: {0}")]
pub struct NegotiationError(pub String);

/// Parameters of one offer or response, validated (RFC 7692 §7.1).
#[derive(Debug, Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in offers only).
    client_max_window_bits: Option<Option<u8>>,
}

/// A window-bits value: "8" to "15", digits only, no leading zero.
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

fn parse(offer: &ExtensionOffer, response: bool) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in &offer.params {
        let lname = name.to_ascii_lowercase();
        if seen.contains(&lname) {
            return Err(format!("parameter {name} appears twice"));
        }
        seen.push(lname.clone());
        let bits = |v: &Option<String>| -> Result<u8, String> {
            let v = v
                .as_deref()
                .ok_or_else(|| format!("{name} needs a value (8-15)"))?;
            window_bits(v).ok_or_else(|| format!("{name}={v:?} is not a window size (8-15)"))
        };
        match lname.as_str() {
            "server_no_context_takeover" | "client_no_context_takeover" => {
                if value.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                if lname.starts_with("server") {
                    p.server_no_context_takeover = true;
                } else {
                    p.client_no_context_takeover = true;
                }
            }
            "server_max_window_bits" => p.server_max_window_bits = Some(bits(value)?),
            "client_max_window_bits" => {
                p.client_max_window_bits = Some(match value {
                    None if !response => None,
                    _ => Some(bits(value)?),
                })
            }
            _ => return Err(format!("unknown parameter {name}")),
        }
    }
    Ok(p)
}

impl DeflateConfig {
    fn send_bits(&self) -> u8 {
        self.window_bits.clamp(8, 15)
    }
    fn peer_bits(&self) -> u8 {
        self.peer_window_bits.clamp(8, 15)
    }

    /// The client's `Sec-WebSocket-Extensions` offer for this configuration.
    pub fn offer(&self) -> String {
        let mut s = String::from(PERMESSAGE_DEFLATE);
        // Always say we can limit our window: servers may then ask us to.
        match self.send_bits() {
            15 => s.push_str("; client_max_window_bits"),
            b => s.push_str(&format!("; client_max_window_bits={b}")),
        }
        if self.peer_bits() < 15 {
            s.push_str(&format!("; server_max_window_bits={}", self.peer_bits()));
        }
        if self.no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.peer_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        s
    }

    /// Server side: picks the first acceptable permessage-deflate offer
    /// among the client's (RFC 7692 §5: invalid offers are declined, the
    /// next one is tried) and returns the agreement with its response
    /// header. `None`: nothing acceptable; the connection goes on without
    /// compression.
    pub fn negotiate_server(&self, offers: &[ExtensionOffer]) -> Option<Negotiated> {
        offers
            .iter()
            .filter(|o| o.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
            .find_map(|o| parse(o, false).ok())
            .map(|offer| {
                let mut response = String::from(PERMESSAGE_DEFLATE);
                let snct = offer.server_no_context_takeover || self.no_context_takeover;
                if snct {
                    response.push_str("; server_no_context_takeover");
                }
                let cnct = offer.client_no_context_takeover || self.peer_no_context_takeover;
                if cnct {
                    response.push_str("; client_no_context_takeover");
                }
                let mut send_bits = self.send_bits();
                let server_bits = match offer.server_max_window_bits {
                    Some(max) => {
                        send_bits = send_bits.min(max);
                        response.push_str(&format!("; server_max_window_bits={send_bits}"));
                        send_bits
                    }
                    None => 15,
                };
                let client_bits = match offer.client_max_window_bits {
                    Some(v) => {
                        let w = self.peer_bits().min(v.unwrap_or(15));
                        if w < 15 || v.is_some() {
                            response.push_str(&format!("; client_max_window_bits={w}"));
                        }
                        w
                    }
                    None => 15,
                };
                Negotiated {
                    params: DeflateParams {
                        server_no_context_takeover: snct,
                        client_no_context_takeover: cnct,
                        server_max_window_bits: server_bits,
                        client_max_window_bits: client_bits,
                    },
                    response,
                    server: true,
                    level: self.level.min(9),
                    threshold: self.threshold,
                    send_window_bits: send_bits,
                }
            })
    }

    /// Client side: checks the server's accepted extensions against our
    /// [`DeflateConfig::offer`]. `Ok(None)`: the server declined.
    ///
    /// # Errors
    /// A response that breaks RFC 7692 §7.1 (unknown or repeated
    /// parameters, bad values, a window above what we asked, a missing
    /// `server_no_context_takeover` we asked for, deflate accepted twice).
    pub fn negotiate_client(
        &self,
        accepted: &[ExtensionOffer],
    ) -> Result<Option<Negotiated>, NegotiationError> {
        let Some(r) = parse_response(accepted)? else {
            return Ok(None);
        };
        if let Some(b) = r.server_max_window_bits {
            if self.peer_bits() < 15 && b > self.peer_bits() {
                return Err(NegotiationError(format!(
                    "server_max_window_bits={b} is above the {} we asked for",
                    self.peer_bits()
                )));
            }
        }
        if self.peer_no_context_takeover && !r.server_no_context_takeover {
            return Err(NegotiationError(
                "server_no_context_takeover was requested but the response lacks it".into(),
            ));
        }
        let client_bits = r.client_max_window_bits.flatten().unwrap_or(15);
        Ok(Some(Negotiated {
            params: DeflateParams {
                server_no_context_takeover: r.server_no_context_takeover,
                client_no_context_takeover: r.client_no_context_takeover
                    || self.no_context_takeover,
                server_max_window_bits: r.server_max_window_bits.unwrap_or(15),
                client_max_window_bits: client_bits,
            },
            response: String::new(),
            server: false,
            level: self.level.min(9),
            threshold: self.threshold,
            send_window_bits: self.send_bits().min(client_bits),
        }))
    }
}

/// The one permessage-deflate of a server's response, parsed.
fn parse_response(accepted: &[ExtensionOffer]) -> Result<Option<Parsed>, NegotiationError> {
    let mut found = accepted
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE));
    let Some(ext) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(NegotiationError("permessage-deflate accepted twice".into()));
    }
    parse(ext, true).map(Some).map_err(NegotiationError)
}

/// The parameters a server's `Sec-WebSocket-Extensions` response agreed
/// to, as both ends apply them (a relay that shows both directions inflated
/// reads them here). `Ok(None)`: permessage-deflate was not accepted.
///
/// # Errors
/// A response that breaks RFC 7692 §7.1.
pub fn response_params(
    accepted: &[ExtensionOffer],
) -> Result<Option<DeflateParams>, NegotiationError> {
    let Some(r) = parse_response(accepted)? else {
        return Ok(None);
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: r.server_no_context_takeover,
        client_no_context_takeover: r.client_no_context_takeover,
        server_max_window_bits: r.server_max_window_bits.unwrap_or(15),
        client_max_window_bits: r.client_max_window_bits.flatten().unwrap_or(15),
    }))
}

/// Why inflating a message failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The inflated message passed the limit.
    TooLarge(u64),
    /// Not a valid deflate stream.
    Invalid(String),
}

/// Compressor and inflater of one connection.
pub(crate) struct Codec {
    neg: Negotiated,
    compress: Option<Compress>,
    decompress: Option<Decompress>,
    /// The peer ended its deflate stream (BFINAL): start a new one.
    stream_ended: bool,
    /// The compressor / inflater was used since the last `release_idle`.
    compress_used: bool,
    decompress_used: bool,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("negotiated", &self.neg)
            .finish_non_exhaustive()
    }
}

/// zlib cannot make an 8-bit raw deflate window and silently uses 9; its
/// 9-bit compressor never reaches back more than 250 bytes (window minus
/// lookahead), so the output is valid for an 8-bit inflater. Inflating
/// with a larger window than agreed is always safe.
fn zlib_bits(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

impl Codec {
    pub(crate) fn new(neg: Negotiated) -> Self {
        Codec {
            neg,
            compress: None,
            decompress: None,
            stream_ended: false,
            compress_used: false,
            decompress_used: false,
        }
    }

    /// Frees what an idle connection does not need: the compressor if it
    /// was not used since the last call (a new one may start at any message
    /// boundary: the peer's inflater just sees new blocks), and the
    /// inflater if the peer does not carry context between messages.
    pub(crate) fn release_idle(&mut self) {
        if !std::mem::take(&mut self.compress_used) {
            self.compress = None;
        }
        let recv_fresh = self.neg.recv_no_context_takeover() || self.stream_ended;
        if !std::mem::take(&mut self.decompress_used) && recv_fresh {
            self.decompress = None;
            self.stream_ended = false;
        }
    }

    /// Whether [`Codec::release_idle`] may free something now or later.
    pub(crate) fn holds_releasable(&self) -> bool {
        let recv_fresh = self.neg.recv_no_context_takeover() || self.stream_ended;
        self.compress.is_some() || (self.decompress.is_some() && recv_fresh)
    }

    /// Whether a compressor / inflater is allocated now.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> (bool, bool) {
        (self.compress.is_some(), self.decompress.is_some())
    }

    pub(crate) fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// Whether a message of `len` bytes is worth compressing.
    pub(crate) fn should_compress(&self, len: usize) -> bool {
        len >= self.neg.threshold.max(1)
    }

    /// Compresses one whole message (RFC 7692 §7.2.1): deflate with a sync
    /// flush, without the trailing `00 00 ff ff`.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        self.compress_used = true;
        let (level, bits) = (self.neg.level, zlib_bits(self.neg.send_window_bits));
        let c = self.compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits)
        });
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let start_in = c.total_in();
        loop {
            let consumed = (c.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflate does not fail on valid state");
            let consumed = (c.total_in() - start_in) as usize;
            // Done when all input is in and the flush had room to finish.
            if consumed == data.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.neg.send_no_context_takeover() {
            c.reset();
        }
        out
    }

    /// Inflates one frame's payload of a compressed message into `out`;
    /// `fin` ends the message. Stops as soon as `out` would exceed `limit`
    /// bytes in total.
    pub(crate) fn decompress(
        &mut self,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        self.decompress_used = true;
        let bits = zlib_bits(self.neg.recv_window_bits());
        if self.stream_ended {
            self.stream_ended = false;
            if let Some(d) = &mut self.decompress {
                d.reset(false);
            }
        }
        let d = self
            .decompress
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let inputs: [&[u8]; 2] = [data, if fin { &TAIL } else { &[] }];
        // The output's capacity never exceeds limit + 1: inflating writes
        // into spare capacity only, so crossing the limit is detected
        // without inflating further (and without zero-filling buffers).
        let cap = limit.saturating_add(1);
        if out.capacity() - out.len() < 64 {
            let guess = data.len().saturating_mul(4).max(1024);
            out.reserve_exact(guess.min(cap.saturating_sub(out.len())));
        }
        for input in inputs {
            let mut consumed = 0usize;
            loop {
                if out.len() == out.capacity() {
                    // Double, capped at the limit (+1 to see it crossed).
                    let more = out.capacity().max(1024).min(cap - out.len());
                    out.reserve_exact(more);
                }
                let (in0, out0) = (d.total_in(), d.total_out());
                let status = d
                    .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                    .map_err(|e| InflateError::Invalid(e.to_string()))?;
                let produced = (d.total_out() - out0) as usize;
                consumed += (d.total_in() - in0) as usize;
                if out.len() > limit {
                    return Err(InflateError::TooLarge(out.len() as u64));
                }
                if status == Status::StreamEnd {
                    // BFINAL: what follows in this message (at most the
                    // tail) is not deflate data.
                    self.stream_ended = true;
                    break;
                }
                let output_full = out.len() == out.capacity();
                if !output_full && (consumed == input.len() || produced == 0) {
                    break;
                }
            }
            if self.stream_ended {
                break;
            }
        }
        if fin && self.neg.recv_no_context_takeover() && !self.stream_ended {
            d.reset(false);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::parse_extensions;

    fn offers(s: &str) -> Vec<ExtensionOffer> {
        parse_extensions(s).unwrap()
    }

    #[test]
    fn window_bits_values() {
        for ok in ["8", "9", "10", "15"] {
            assert!(window_bits(ok).is_some(), "{ok}");
        }
        for bad in ["7", "16", "08", "", "1a", "+9", " 9"] {
            assert!(window_bits(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn server_negotiation_table() {
        let d = DeflateConfig::default();
        // (offer, response, params)
        let table: &[(&str, Option<&str>)] = &[
            ("permessage-deflate", Some("permessage-deflate")),
            (
                "permessage-deflate; client_max_window_bits",
                Some("permessage-deflate"),
            ),
            (
                "permessage-deflate; client_max_window_bits=10",
                Some("permessage-deflate; client_max_window_bits=10"),
            ),
            (
                "permessage-deflate; server_max_window_bits=8",
                Some("permessage-deflate; server_max_window_bits=8"),
            ),
            (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            ),
            (
                "permessage-deflate; server_max_window_bits=\"10\"",
                Some("permessage-deflate; server_max_window_bits=10"),
            ),
            // Invalid offers are declined.
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; server_max_window_bits=7", None),
            ("permessage-deflate; client_max_window_bits=0", None),
            ("permessage-deflate; server_no_context_takeover=1", None),
            ("permessage-deflate; unknown", None),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                None,
            ),
            ("x-webkit-deflate-frame", None),
            // The first acceptable offer wins.
            (
                "permessage-deflate; foo, permessage-deflate; server_max_window_bits=12, permessage-deflate",
                Some("permessage-deflate; server_max_window_bits=12"),
            ),
        ];
        for (offer, want) in table {
            let got = d.negotiate_server(&offers(offer)).map(|n| n.response);
            assert_eq!(got.as_deref(), *want, "offer {offer:?}");
        }
    }

    #[test]
    fn server_config_limits_windows_and_context() {
        let d = DeflateConfig {
            window_bits: 10,
            peer_window_bits: 9,
            no_context_takeover: true,
            peer_no_context_takeover: true,
            ..Default::default()
        };
        let n = d
            .negotiate_server(&offers(
                "permessage-deflate; client_max_window_bits; server_max_window_bits=12",
            ))
            .unwrap();
        assert_eq!(
            n.response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"
        );
        assert_eq!(n.params.client_max_window_bits, 9);
        assert_eq!(n.send_window_bits, 10);
        // The client did not say it can limit its window: no client_max_window_bits.
        let n = d.negotiate_server(&offers("permessage-deflate")).unwrap();
        assert!(
            !n.response.contains("client_max_window_bits"),
            "{}",
            n.response
        );
        assert_eq!(n.params.client_max_window_bits, 15);
    }

    #[test]
    fn client_negotiation_table() {
        let d = DeflateConfig {
            peer_window_bits: 12,
            ..Default::default()
        };
        assert_eq!(
            d.offer(),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=12"
        );
        let ok: &[(&str, DeflateParams)] = &[
            (
                "permessage-deflate",
                DeflateParams {
                    server_no_context_takeover: false,
                    client_no_context_takeover: false,
                    server_max_window_bits: 15,
                    client_max_window_bits: 15,
                },
            ),
            (
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9; client_no_context_takeover; server_no_context_takeover",
                DeflateParams {
                    server_no_context_takeover: true,
                    client_no_context_takeover: true,
                    server_max_window_bits: 10,
                    client_max_window_bits: 9,
                },
            ),
        ];
        for (resp, want) in ok {
            let n = d.negotiate_client(&offers(resp)).unwrap().unwrap();
            assert_eq!(n.params, *want, "{resp}");
        }
        assert_eq!(d.negotiate_client(&[]).unwrap(), None);
        for bad in [
            "permessage-deflate; server_max_window_bits=13",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; bogus",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate, permessage-deflate",
        ] {
            assert!(d.negotiate_client(&offers(bad)).is_err(), "{bad}");
        }
        let strict = DeflateConfig {
            peer_no_context_takeover: true,
            ..Default::default()
        };
        assert!(strict
            .negotiate_client(&offers("permessage-deflate"))
            .is_err());
    }

    fn pair(server_cfg: &DeflateConfig, client_cfg: &DeflateConfig) -> (Codec, Codec) {
        let offer = client_cfg.offer();
        let s = server_cfg.negotiate_server(&offers(&offer)).unwrap();
        let c = client_cfg
            .negotiate_client(&offers(&s.response))
            .unwrap()
            .unwrap();
        (Codec::new(s), Codec::new(c))
    }

    fn inflate(c: &mut Codec, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.decompress(data, true, &mut out, usize::MAX - 1).unwrap();
        out
    }

    #[test]
    fn rfc7692_examples() {
        let (mut server, mut client) = pair(&DeflateConfig::default(), &DeflateConfig::default());
        // §7.2.3.1: "Hello" in one compressed message.
        assert_eq!(
            server.compress(b"Hello"),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        assert_eq!(
            inflate(&mut client, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            b"Hello"
        );
        // §7.2.3.2: the second "Hello" with the shared window.
        assert_eq!(server.compress(b"Hello"), [0xf2, 0x00, 0x11, 0x00, 0x00]);
        assert_eq!(
            inflate(&mut client, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            b"Hello"
        );
        // §7.2.3.3: an uncompressed (stored) block.
        let (_, mut c2) = pair(&DeflateConfig::default(), &DeflateConfig::default());
        assert_eq!(
            inflate(
                &mut c2,
                &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]
            ),
            b"Hello"
        );
        // §7.2.3.4: a block with BFINAL set; the next message starts afresh.
        let (_, mut c3) = pair(&DeflateConfig::default(), &DeflateConfig::default());
        assert_eq!(
            inflate(&mut c3, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]),
            b"Hello"
        );
        assert_eq!(
            inflate(&mut c3, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            b"Hello"
        );
        // §7.2.3.5: two DEFLATE blocks in one message.
        let (_, mut c4) = pair(&DeflateConfig::default(), &DeflateConfig::default());
        assert_eq!(
            inflate(
                &mut c4,
                &[0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]
            ),
            b"Hello"
        );
    }

    #[test]
    fn no_context_takeover_compresses_each_message_alone() {
        let cfg = DeflateConfig {
            no_context_takeover: true,
            ..Default::default()
        };
        let (mut server, mut client) = pair(&DeflateConfig::default(), &cfg);
        // The client resets: "Hello" twice compresses the same way.
        assert_eq!(
            client.compress(b"Hello"),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        assert_eq!(
            client.compress(b"Hello"),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        for _ in 0..2 {
            assert_eq!(
                inflate(&mut server, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
                b"Hello"
            );
        }
        // The server keeps its context.
        assert_eq!(server.compress(b"Hello").len(), 7);
        assert_eq!(server.compress(b"Hello"), [0xf2, 0x00, 0x11, 0x00, 0x00]);
    }

    #[test]
    fn fragments_inflate_in_pieces() {
        let (_, mut client) = pair(&DeflateConfig::default(), &DeflateConfig::default());
        let mut out = Vec::new();
        client
            .decompress(&[0xf2, 0x48, 0xcd], false, &mut out, 1000)
            .unwrap();
        client
            .decompress(&[0xc9, 0xc9, 0x07, 0x00], true, &mut out, 1000)
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn window_bits_8_round_trips() {
        let cfg = DeflateConfig {
            window_bits: 8,
            peer_window_bits: 8,
            ..Default::default()
        };
        let (mut server, mut client) = pair(&cfg, &cfg);
        assert_eq!(server.neg.params.server_max_window_bits, 8);
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let z = client.compress(&text);
        assert_eq!(inflate(&mut server, &z), text);
        let z = server.compress(&text);
        assert_eq!(inflate(&mut client, &z), text);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 64 MiB of zeros deflates to about 64 KB (one message, built from
        // 1 MiB sync-flushed pieces); the limit stops it at 1 MiB + 1.
        let (mut server, mut client) = pair(&DeflateConfig::default(), &DeflateConfig::default());
        let chunk = vec![0u8; 1 << 20];
        let mut z = Vec::new();
        for i in 0..64 {
            if i > 0 {
                z.extend_from_slice(&TAIL);
            }
            z.extend(server.compress(&chunk));
        }
        assert!(z.len() < 2 << 20, "{} bytes", z.len());
        let mut out = Vec::new();
        let err = client.decompress(&z, true, &mut out, 1 << 20).unwrap_err();
        assert!(
            matches!(err, InflateError::TooLarge(n) if n == (1 << 20) + 1),
            "{err:?}"
        );
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
    }

    #[test]
    fn idle_compressor_is_released_and_the_stream_stays_valid() {
        let (mut server, mut client) = pair(&DeflateConfig::default(), &DeflateConfig::default());
        let msg = json(200);
        let z = server.compress(&msg);
        let fresh = z.len();
        assert_eq!(inflate(&mut client, &z), msg);
        server.release_idle(); // used since the last call: kept
        assert!(server.allocated().0);
        server.release_idle(); // idle for a whole period: freed
        assert!(!server.allocated().0);
        // A fresh compressor continues the stream: the peer's inflater,
        // which kept its context, decodes it.
        let z = server.compress(&msg);
        assert_eq!(inflate(&mut client, &z), msg);
        // The client's inflater is kept: the server may refer back to it.
        client.release_idle();
        client.release_idle();
        assert!(client.allocated().1);
        let z = server.compress(&msg);
        assert!(
            z.len() < fresh / 2,
            "context taken over: {} vs {fresh} bytes",
            z.len()
        );
        assert_eq!(inflate(&mut client, &z), msg);
    }

    fn json(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("{{\"id\":{i},\"ok\":true}}").into_bytes())
            .collect()
    }

    #[test]
    fn invalid_data_is_an_error() {
        let (_, mut client) = pair(&DeflateConfig::default(), &DeflateConfig::default());
        let mut out = Vec::new();
        assert!(matches!(
            client.decompress(&[0xff, 0xff, 0xff], true, &mut out, 1000),
            Err(InflateError::Invalid(_))
        ));
    }
}
