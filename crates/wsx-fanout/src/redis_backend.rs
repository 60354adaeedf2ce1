//! Rooms across nodes on Redis. Per room: a stream of its history (capped
//! in length, expiring when idle), a hash with its epoch and newest offset,
//! and a Pub/Sub channel. A publish is one script call: the offset is taken,
//! the message appended and published in one atomic step, so every node
//! sees the same contiguous offsets. Nodes hold one pattern subscription
//! (`PREFIX:c:*`) on a connection that reconnects and resubscribes by
//! itself (redis-rs's ConnectionManager, RESP3 push); what they miss while
//! it is away they read back from the streams.

use crate::config::{FanoutConfig, FanoutError, PublishError};
use crate::wire::{Payload, Position};
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Script, Value};
use std::time::Duration;

/// Offset, append, publish; or the position an idempotency key already has.
/// KEYS: stream, meta, key. ARGV: kind, payload, maxlen, ttl s, channel,
/// idempotency key ('' for none), its ttl s.
const PUBLISH: &str = r"
local has_key = ARGV[6] ~= ''
if has_key then
  local prev = redis.call('GET', KEYS[3])
  if prev then
    local off, ep = string.match(prev, '^(%d+):(.*)$')
    return {tonumber(off), ep, 1}
  end
end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  -- A new epoch: whatever the stream holds belongs to a lost one.
  local t = redis.call('TIME')
  epoch = string.format('%d%06d', t[1], t[2])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local off = redis.call('HINCRBY', KEYS[2], 'offset', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], off .. '-0', 'k', ARGV[1], 'p', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
if has_key then
  redis.call('SET', KEYS[3], off .. ':' .. epoch, 'EX', ARGV[7])
end
redis.call('PUBLISH', ARGV[5], off .. ':' .. epoch .. ':' .. ARGV[1] .. ':' .. ARGV[2])
return {off, epoch, 0}
";

/// The epoch and the history `from..=to` (what is left of it), atomically.
/// KEYS: stream, meta. ARGV: from, to.
const RANGE: &str = r"
local epoch = redis.call('HGET', KEYS[2], 'epoch') or ''
local rows = redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', ARGV[2] .. '-0')
local out = {}
for _, r in ipairs(rows) do
  local f = r[2]
  local k, p = '', ''
  for i = 1, #f, 2 do
    if f[i] == 'k' then k = f[i + 1] elseif f[i] == 'p' then p = f[i + 1] end
  end
  out[#out + 1] = string.match(r[1], '^(%d+)')
  out[#out + 1] = k
  out[#out + 1] = p
end
return {epoch, out}
";

/// A node's connections to Redis.
pub(crate) struct RedisBackend {
    url: String,
    /// Commands and scripts: fails fast during an outage.
    cmd: ConnectionManager,
    /// The pattern subscription (and its keepalive pings).
    sub: ConnectionManager,
    publish: Script,
    range: Script,
    prefix: String,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn unavailable(url: &str, e: &redis::RedisError) -> String {
    format!("Redis at {url} is unavailable ({e})")
}

impl RedisBackend {
    /// Connects (both connections) and subscribes; pushes go to `push`.
    pub async fn connect(
        url: &str,
        config: &FanoutConfig,
        push: tokio::sync::mpsc::UnboundedSender<PushInfo>,
    ) -> Result<RedisBackend, FanoutError> {
        // RESP3: Pub/Sub messages arrive as pushes on a managed connection.
        let full = if url.contains("protocol=") {
            url.to_string()
        } else if url.contains('?') {
            format!("{url}&protocol=resp3")
        } else {
            format!("{url}/?protocol=resp3").replace("//?", "/?")
        };
        let client = redis::Client::open(full.as_str())
            .map_err(|e| FanoutError::Invalid(format!("--redis {url}: {e}")))?;
        let timeout = config.redis_timeout;
        // Fail fast: a publish during an outage must come back with an
        // error in about `timeout`, not after minutes of retries.
        let cmd_config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        // The subscriber retries on and is pinged (the manager gives up
        // after its retries until a command is sent: the pings are that).
        let sub_config = ConnectionManagerConfig::new()
            .set_number_of_retries(4)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_push_sender(push)
            .set_automatic_resubscription();
        let un = |e: redis::RedisError| FanoutError::Unavailable(unavailable(url, &e));
        let cmd = client
            .get_connection_manager_with_config(cmd_config)
            .await
            .map_err(un)?;
        let mut sub = client
            .get_connection_manager_with_config(sub_config)
            .await
            .map_err(un)?;
        let prefix = config.prefix.clone();
        sub.psubscribe(format!("{prefix}:c:*")).await.map_err(un)?;
        Ok(RedisBackend {
            url: url.to_string(),
            cmd,
            sub,
            publish: Script::new(PUBLISH),
            range: Script::new(RANGE),
            prefix,
        })
    }

    /// Where the broker is, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, kind: &str, room: &str) -> String {
        format!("{}:{kind}:{room}", self.prefix)
    }

    /// Publishes; the position, and whether the key had been used.
    pub async fn publish(
        &self,
        room: &str,
        payload: &Payload,
        key: Option<&str>,
        config: &FanoutConfig,
    ) -> Result<(Position, bool), PublishError> {
        let ttl = config.history_ttl.as_secs().max(1);
        let key_ttl = config
            .idempotency_ttl
            .unwrap_or(config.history_ttl)
            .as_secs()
            .max(1);
        let idem = key.map_or_else(
            || self.key("i", "-"),
            |k| self.key("i", &format!("{room}\u{0}{k}")),
        );
        let mut cmd = self.cmd.clone();
        let r: redis::RedisResult<(u64, String, u8)> = self
            .publish
            .key(self.key("h", room))
            .key(self.key("m", room))
            .key(idem)
            .arg(if payload.text { "t" } else { "b" })
            .arg(payload.data.as_ref())
            .arg(config.history.max(1))
            .arg(ttl)
            .arg(self.key("c", room))
            .arg(key.unwrap_or(""))
            .arg(key_ttl)
            .invoke_async(&mut cmd)
            .await;
        match r {
            Ok((offset, epoch, dup)) => Ok((Position { epoch, offset }, dup == 1)),
            Err(e) => {
                let retryable = e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error();
                Err(PublishError {
                    message: if retryable {
                        format!(
                            "{}; the message was not published (or, if the connection broke mid-call, maybe it was): retry with the same idempotency key",
                            unavailable(&self.url, &e)
                        )
                    } else {
                        format!("Redis at {} refused the publish: {e}", self.url)
                    },
                    retryable,
                })
            }
        }
    }

    /// Each room's newest position (None: no history, no epoch).
    pub async fn heads(&self, rooms: &[String]) -> Result<Vec<Option<Position>>, FanoutError> {
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.cmd("HMGET")
                .arg(self.key("m", room))
                .arg("offset")
                .arg("epoch");
        }
        let mut cmd = self.cmd.clone();
        let rows: Vec<(Option<u64>, Option<String>)> = pipe
            .query_async(&mut cmd)
            .await
            .map_err(|e| FanoutError::Unavailable(unavailable(&self.url, &e)))?;
        Ok(rows
            .into_iter()
            .map(|(offset, epoch)| {
                epoch.map(|epoch| Position {
                    epoch,
                    offset: offset.unwrap_or(0),
                })
            })
            .collect())
    }

    /// The room's epoch ('' when it has none) and what is left of its
    /// history `from..=to`, in order.
    pub async fn range(
        &self,
        room: &str,
        from: u64,
        to: u64,
    ) -> Result<(String, Vec<(u64, Payload)>), FanoutError> {
        let mut cmd = self.cmd.clone();
        let (epoch, flat): (String, Vec<Vec<u8>>) = self
            .range
            .key(self.key("h", room))
            .key(self.key("m", room))
            .arg(from)
            .arg(to)
            .invoke_async(&mut cmd)
            .await
            .map_err(|e| FanoutError::Unavailable(unavailable(&self.url, &e)))?;
        let mut out = Vec::with_capacity(flat.len() / 3);
        for row in flat.chunks_exact(3) {
            let offset = std::str::from_utf8(&row[0])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| FanoutError::Invalid("a history entry without an offset".into()))?;
            out.push((
                offset,
                Payload {
                    text: row[1] == b"t",
                    data: Bytes::copy_from_slice(&row[2]),
                },
            ));
        }
        Ok((epoch, out))
    }

    /// Pings the subscriber connection (which makes it reconnect).
    pub async fn ping(&self) -> Result<(), String> {
        let mut sub = self.sub.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut sub)
            .await
            .map(drop)
            .map_err(|e| unavailable(&self.url, &e))
    }

    /// Subscribes again (a resubscription that did not come back).
    pub async fn resubscribe(&self) -> Result<(), String> {
        let mut sub = self.sub.clone();
        sub.psubscribe(format!("{}:c:*", self.prefix))
            .await
            .map_err(|e| unavailable(&self.url, &e))
    }

    /// A room message from a push: its room, position and payload.
    pub fn parse(&self, push: &PushInfo) -> Option<(String, Position, Payload)> {
        if push.kind != PushKind::PMessage {
            return None;
        }
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(body))) =
            (push.data.get(1), push.data.get(2))
        else {
            return None;
        };
        let room = std::str::from_utf8(channel)
            .ok()?
            .strip_prefix(&format!("{}:c:", self.prefix))?
            .to_string();
        let mut parts = body.splitn(4, |b| *b == b':');
        let offset = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        let epoch = std::str::from_utf8(parts.next()?).ok()?.to_string();
        let text = parts.next()? == b"t";
        let data = Bytes::copy_from_slice(parts.next()?);
        Some((room, Position { epoch, offset }, Payload { text, data }))
    }

    /// Presence: `entries` (member strings) live until `until_ms`.
    pub async fn presence_renew(
        &self,
        room: &str,
        entries: &[String],
        until_ms: u64,
    ) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        let key = self.key("p", room);
        let mut pipe = redis::pipe();
        for e in entries {
            pipe.cmd("ZADD").arg(&key).arg(until_ms).arg(e).ignore();
        }
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(until_ms.saturating_sub(now_ms()).max(1000))
            .ignore();
        let mut cmd = self.cmd.clone();
        pipe.query_async::<()>(&mut cmd)
            .await
            .map_err(|e| unavailable(&self.url, &e))
    }

    /// Presence: `entry` left.
    pub async fn presence_remove(&self, room: &str, entry: &str) -> Result<(), String> {
        let mut cmd = self.cmd.clone();
        redis::cmd("ZREM")
            .arg(self.key("p", room))
            .arg(entry)
            .query_async::<()>(&mut cmd)
            .await
            .map_err(|e| unavailable(&self.url, &e))
    }

    /// Presence: the live entries of `room` (expired ones are removed).
    pub async fn presence(&self, room: &str) -> Result<Vec<String>, FanoutError> {
        let key = self.key("p", room);
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now_ms())
            .ignore();
        pipe.cmd("ZRANGE").arg(&key).arg(0).arg(-1);
        let mut cmd = self.cmd.clone();
        let (entries,): (Vec<String>,) = pipe
            .query_async(&mut cmd)
            .await
            .map_err(|e| FanoutError::Unavailable(unavailable(&self.url, &e)))?;
        Ok(entries)
    }
}

/// Milliseconds since the Unix epoch (presence deadlines are shared by the
/// nodes: their clocks are assumed to agree within a fraction of the ttl).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
