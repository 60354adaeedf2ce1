//! Small helpers more than one subcommand uses: the protocol settings from
//! the shared flags, the `/close` argument parser, hex text.

/// Protocol settings from the common `--max-message` flag and timers.
pub fn protocol_config(
    max_message: usize,
    ping_interval: Option<std::time::Duration>,
    idle_timeout: Option<std::time::Duration>,
    send_frame_size: Option<usize>,
) -> Result<wsx::Config, String> {
    wsx::Config::builder()
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .ping_interval(ping_interval)
        .idle_timeout(idle_timeout)
        .send_frame_size(send_frame_size)
        .build()
        .map_err(|e| e.to_string())
}

/// The default `--max-message`.
pub fn default_max_message() -> usize {
    wsx::wsx_proto::config::DEFAULT_MAX_MESSAGE_SIZE
}

/// The arguments of a `/close [code] [reason]` command (`connect`'s REPL,
/// `serve --console`): `/close bye` is 1000 with reason "bye".
pub fn parse_close(rest: &str) -> Result<wsx::CloseFrame, String> {
    if rest.is_empty() {
        return Ok(wsx::CloseFrame::new(wsx::CloseCode::NORMAL, ""));
    }
    let (first, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !first.chars().all(|c| c.is_ascii_digit()) {
        return Ok(wsx::CloseFrame::new(wsx::CloseCode::NORMAL, rest));
    }
    let code = first.parse::<u16>().map(wsx::CloseCode).ok();
    match code {
        Some(c) if c.is_sendable() => {
            let reason = tail.trim();
            if reason.len() > wsx::wsx_proto::close::MAX_REASON_LEN {
                return Err(format!(
                    "a close reason has at most {} bytes; this one has {}",
                    wsx::wsx_proto::close::MAX_REASON_LEN,
                    reason.len()
                ));
            }
            Ok(wsx::CloseFrame::new(c, reason))
        }
        _ => Err(format!(
            "close code {first} may not be sent: use 1000-1003, 1007-1014 or 3000-4999 (4000-4999 for applications)"
        )),
    }
}

/// Bytes as lowercase hex digits, two a byte.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsx::{CloseCode, CloseFrame};

    #[test]
    fn close_arguments() {
        assert_eq!(
            parse_close("").unwrap(),
            CloseFrame::new(CloseCode::NORMAL, "")
        );
        assert_eq!(
            parse_close("4000 bye now").unwrap(),
            CloseFrame::new(CloseCode(4000), "bye now")
        );
        assert_eq!(
            parse_close("bye").unwrap(),
            CloseFrame::new(CloseCode::NORMAL, "bye")
        );
        assert!(parse_close("1006").is_err());
        assert!(parse_close("70000").is_err());
    }

    #[test]
    fn hex_is_two_lowercase_digits_a_byte() {
        assert_eq!(hex(b""), "");
        assert_eq!(hex(&[0, 0x0f, 0xab, 0xff]), "000fabff");
    }
}
