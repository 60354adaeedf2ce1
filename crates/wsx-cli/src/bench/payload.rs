//! What the messages contain: pseudo-random bytes or letters, or JSON-like
//! records, deterministic so that every echo can be checked.

pub(super) fn make_payload(size: usize, text: bool) -> Vec<u8> {
    // Deterministic, non-repeating enough that a shifted or mixed-up echo is caught.
    let mut x: u32 = 0x9e37_79b9;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if text {
                b'a' + (x % 26) as u8
            } else {
                x as u8
            }
        })
        .collect()
}

/// How many distinct JSON payloads: at least 64 KiB in all (twice the
/// largest deflate window), between 4 and 256.
pub(super) fn json_payloads(size: usize) -> usize {
    (64 * 1024usize).div_ceil(size.max(1)).clamp(4, 256)
}

/// JSON-like text of exactly `size` bytes: an array of event records with
/// the same keys each time and varying numbers and strings (deterministic
/// for a `seed`), the remainder filled by one `{"n":"..."}` record or
/// spaces. Compresses roughly like real API traffic (repeated keys, digits,
/// short words).
pub(super) fn make_json(size: usize, seed: u64) -> Vec<u8> {
    const USERS: [&str; 8] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    const KINDS: [&str; 4] = ["trade", "quote", "cancel", "fill"];
    const SYMBOLS: [&str; 6] = ["BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = String::with_capacity(size + 256);
    out.push('[');
    let mut ts: u64 = 1_767_225_600_000 + seed * 60_000;
    for id in seed * 1000.. {
        ts += rnd() % 50;
        let r = rnd();
        let rec = format!(
            r#"{{"id":{},"ts":{ts},"type":"{}","user":"{}_{:03}","symbol":"{}","price":{}.{:02},"qty":{}.{:04},"side":"{}","ok":{}}}"#,
            100_000 + id * 7 + r % 5,
            KINDS[(r >> 8) as usize % KINDS.len()],
            USERS[(r >> 12) as usize % USERS.len()],
            (r >> 16) % 1000,
            SYMBOLS[(r >> 26) as usize % SYMBOLS.len()],
            100 + (r >> 30) % 60_000,
            (r >> 46) % 100,
            (r >> 53) % 20,
            rnd() % 10_000,
            if r & 1 == 0 { "buy" } else { "sell" },
            r & 2 == 0,
        );
        let sep = usize::from(out.len() > 1);
        // Room for this record and the closing bracket.
        if out.len() + sep + rec.len() + 1 > size {
            break;
        }
        if sep == 1 {
            out.push(',');
        }
        out.push_str(&rec);
    }
    // Fill the rest: a record with a string of the right length, else spaces.
    let sep = usize::from(out.len() > 1);
    let filler = r#"{"n":""}"#.len() + sep;
    let room = size.saturating_sub(out.len() + 1);
    if room >= filler {
        if sep == 1 {
            out.push(',');
        }
        out.push_str(r#"{"n":""#);
        for _ in 0..room - filler {
            out.push((b'a' + (rnd() % 26) as u8) as char);
        }
        out.push_str(r#""}"#);
    }
    out.push(']');
    let mut b = out.into_bytes();
    b.resize(size.max(b.len()), b' ');
    if b.len() > size {
        // Below 2 bytes no JSON fits: spaces.
        b = vec![b' '; size];
    }
    b
}
