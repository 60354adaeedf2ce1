//! Faults the proxy injects on purpose, to see how a client or a server
//! copes: each one a setting, each one able to target one direction.

use crate::event::Dir;
use std::time::Duration;

/// Which direction a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// Both ways (the default).
    #[default]
    Both,
    /// Client to server only (`@up`).
    Up,
    /// Server to client only (`@down`).
    Down,
}

impl Target {
    /// Whether a frame going `dir` is concerned.
    pub fn covers(self, dir: Dir) -> bool {
        matches!(
            (self, dir),
            (Target::Both, _) | (Target::Up, Dir::Up) | (Target::Down, Dir::Down)
        )
    }
}

/// `VALUE[@up|@down]`: the value and its target.
///
/// ```
/// use wsx_proxy::faults::{split_target, Target};
/// assert_eq!(split_target("3@down").unwrap(), ("3", Target::Down));
/// assert_eq!(split_target("200ms").unwrap(), ("200ms", Target::Both));
/// assert!(split_target("3@sideways").is_err());
/// ```
///
/// # Errors
/// A target that is not `up` or `down`.
pub fn split_target(s: &str) -> Result<(&str, Target), String> {
    match s.rsplit_once('@') {
        None => Ok((s, Target::Both)),
        Some((v, "up")) => Ok((v, Target::Up)),
        Some((v, "down")) => Ok((v, Target::Down)),
        Some((_, other)) => Err(format!(
            "@{other}: a fault targets @up (client to server) or @down (server to client)"
        )),
    }
}

/// `150ms`, `2s`, `1.5s`, `1m`.
///
/// # Errors
/// Not a number with a unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 200ms, 2s, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: the unit is ms, s or m")),
    };
    if !(secs >= 0.0 && secs.is_finite()) {
        return Err(format!("{s:?} is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A delay before each frame is passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    /// Always this long...
    pub base: Duration,
    /// ...plus up to this much more, at random.
    pub jitter: Duration,
}

/// The faults of one proxy.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Faults {
    /// Hold each frame (`200ms`, or `200ms~100ms` for up to 100 ms more).
    pub delay: Option<(Delay, Target)>,
    /// At most this many bytes per second.
    pub throttle: Option<(u64, Target)>,
    /// Drop both TCP connections (no close frame) once this many messages
    /// went through.
    pub drop_after_messages: Option<(u64, Target)>,
    /// Drop both TCP connections this long after the connection opened.
    pub drop_after_time: Option<Duration>,
    /// Once this many messages went through, close both sides with a code
    /// and reason (as if the other side did).
    pub close_after: Option<(u64, u16, String, Target)>,
    /// Drop pings and pongs: a path that looks alive but answers nothing.
    pub no_pong: Option<Target>,
    /// Corrupt the Nth data frame (from 1): its first payload byte flipped
    /// (invalid UTF-8 in a text frame), or RSV3 set on an empty one.
    pub corrupt: Option<(u64, Target)>,
    /// Forward the handshake without its `Upgrade` header, as a reverse
    /// proxy without the WebSocket lines does.
    pub strip_upgrade: bool,
}

impl Faults {
    /// `200ms` or `200ms~100ms`, with a target.
    ///
    /// # Errors
    /// Not durations.
    pub fn parse_delay(s: &str) -> Result<(Delay, Target), String> {
        let (v, target) = split_target(s)?;
        let (base, jitter) = v.split_once('~').unwrap_or((v, "0ms"));
        Ok((
            Delay {
                base: parse_duration(base)?,
                jitter: parse_duration(jitter)?,
            },
            target,
        ))
    }

    /// `16384` bytes per second (or `16k`, `1m`), with a target.
    ///
    /// # Errors
    /// Not a positive number.
    pub fn parse_rate(s: &str) -> Result<(u64, Target), String> {
        let (v, target) = split_target(s)?;
        let (num, mult) = match v.to_ascii_lowercase() {
            x if x.ends_with('k') => (x[..x.len() - 1].to_string(), 1024),
            x if x.ends_with('m') => (x[..x.len() - 1].to_string(), 1 << 20),
            x => (x, 1),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{v:?} is not bytes per second (e.g. 16384, 16k, 1m)"))?;
        if n == 0 {
            return Err("a throttle of 0 bytes per second would stop everything".into());
        }
        Ok((n * mult, target))
    }

    /// A count with a target (`3`, `3@down`).
    ///
    /// # Errors
    /// Not a number.
    pub fn parse_count(s: &str) -> Result<(u64, Target), String> {
        let (v, target) = split_target(s)?;
        let n = v
            .parse()
            .map_err(|_| format!("{v:?} is not a count of messages"))?;
        Ok((n, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_values_parse_with_their_targets() {
        assert_eq!(parse_duration("150ms").unwrap(), Duration::from_millis(150));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("fast").is_err());
        let (d, t) = Faults::parse_delay("200ms~50ms@up").unwrap();
        assert_eq!(
            (d.base, d.jitter, t),
            (
                Duration::from_millis(200),
                Duration::from_millis(50),
                Target::Up
            )
        );
        assert_eq!(
            Faults::parse_rate("16k@down").unwrap(),
            (16384, Target::Down)
        );
        assert!(Faults::parse_rate("0").is_err());
        assert_eq!(Faults::parse_count("3").unwrap(), (3, Target::Both));
        assert!(Target::Up.covers(Dir::Up) && !Target::Up.covers(Dir::Down));
    }
}
