"""The messages every interop test sends (Python side; interop/node/messages.mjs
mirrors it byte for byte). Deterministic, so that runs can be compared.

    python3 messages.py SUITE BIG    writes both files for interop_client.rs and
                                     prints the expected digests (JSON) on stdout
"""

import functools
import hashlib
import json


def big_json(min_bytes=100 * 1024):
    """A compressible JSON document of at least min_bytes UTF-8 bytes, on one line."""
    items = []
    doc = ""
    i = 0
    while len(doc.encode()) < min_bytes:
        for _ in range(100):
            items.append({
                "id": i,
                "name": f"item-{i}",
                "tags": ["alpha", "beta", "gamma"],
                "value": i * 7 % 1000,
                "note": "ünïcödé ✓ — 日本語",
            })
            i += 1
        doc = json.dumps({"kind": "wsx-interop", "items": items}, ensure_ascii=False, separators=(",", ":"))
    return doc


UTF8_SMALL = "héllo wörld — 你好, мир 🌍🚀"


def lcg_bytes(n, seed=12345):
    """n pseudo-random bytes (incompressible)."""
    out = bytearray(n)
    x = seed
    for k in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[k] = (x >> 16) & 0xFF
    return bytes(out)


def texts():
    """Text messages: a large JSON (twice: context takeover), small, UTF-8, empty."""
    j = big_json()
    return [j, "hi", UTF8_SMALL, UTF8_SMALL * 300, j, "x", ""]


def binaries():
    """Binary messages: small, a compressible pattern, random, every byte value, empty."""
    return [
        bytes([1, 2, 3, 254, 255]),
        bytes((k * 7) % 255 + 1 for k in range(64 * 1024)),
        lcg_bytes(32 * 1024),
        bytes(range(256)) * 64,
        b"\x00",
        b"",
    ]


# ---- 16 MiB messages ----------------------------------------------------------------

# Exactly the default message limit of `wsx serve --max-message` and of the wsx
# client (wsx_proto DEFAULT_MAX_MESSAGE_SIZE), so both limits are met exactly.
BIG = 16 << 20

# 63 words (ASCII and 2-, 3- and 4-byte UTF-8) and a newline, drawn at random:
# deflate brings this to ~25-30% (not to almost nothing, as with repeated
# blocks), so the wire check still tells a compressing side from one that is not.
WORDS = (
    "the of and to in is was for on that with as by at from this be are or an it not "
    "which have wsx frame deflate window socket ping pong close reason byte message text "
    "binary server client héllo wörld ünïcödé naïve café 日本語 你好 мир привет 🌍 🚀 ✓ "
    "— λ Ω alpha beta gamma delta echo foxtrot lima 42 1000"
).split()
assert len(WORDS) == 63, len(WORDS)


def word_salad(seed):
    """BIG bytes of UTF-8 text: words picked by SHAKE-256(seed), cut at the last
    character boundary before BIG bytes and padded with '.' to exactly BIG."""
    vocab = [w + " " for w in WORDS] + ["\n"]
    rnd = hashlib.shake_256(seed).digest(BIG // 4)  # words average > 4 bytes
    data = "".join([vocab[b & 63] for b in rnd]).encode()
    assert len(data) > BIG
    cut = BIG
    while data[cut] & 0xC0 == 0x80:  # a continuation byte: the character began earlier
        cut -= 1
    return data[:cut] + b"." * (BIG - cut)


# A byte bijection (167 is odd): the salad's 63 byte values become other ones
# (control bytes, bytes >= 0x80: not UTF-8), the statistics stay the text's.
PERMUTATION = bytes((k * 167 + 13) & 0xFF for k in range(256))


def big_text():
    """A 16 MiB text message (exactly BIG bytes of UTF-8)."""
    return word_salad(b"wsx-interop big text").decode()


@functools.lru_cache(maxsize=1)
def big_binary():
    """A 16 MiB binary message: a different salad, every byte permuted."""
    return word_salad(b"wsx-interop big binary").translate(PERMUTATION)


# One byte over the limit: wsx must refuse it with 1009 (message too big).
OVERSIZE = BIG + 1


def oversize():
    """A binary message of OVERSIZE bytes: the 16 MiB binary and one byte more
    (compressible like it, so on the wire it is far below the limit: wsx must
    count the inflated size)."""
    return big_binary() + b"!"


def bigs():
    """The 16 MiB messages in sending order: binary, then text."""
    return [big_binary(), big_text()]


def sha256(m):
    return hashlib.sha256(m.encode() if isinstance(m, str) else m).hexdigest()


def write_records(path, msgs):
    """Records for crates/wsx-testkit/src/bin/interop_client.rs: per message one kind
    byte (t/b), a 4-byte big-endian length and the payload."""
    with open(path, "wb") as f:
        for m in msgs:
            data = m.encode() if isinstance(m, str) else m
            f.write((b"t" if isinstance(m, str) else b"b") + len(data).to_bytes(4, "big") + data)


def suite_order():
    """The suite as interop_client.rs sends it: texts and binaries interleaved."""
    ts, bs = texts(), binaries()
    order = []
    for k in range(max(len(ts), len(bs))):
        order += ts[k:k + 1] + bs[k:k + 1]
    return order


def expected():
    """What judge.py compares the peers' reports with."""
    suite = texts() + binaries()
    big = bigs()
    return {
        "limit": BIG,
        "oversize_bytes": OVERSIZE,
        "suite_messages": len(suite),
        "suite_payload": sum(len(m.encode() if isinstance(m, str) else m) for m in suite),
        "big": [{"kind": "text" if isinstance(m, str) else "binary",
                 "bytes": len(m.encode() if isinstance(m, str) else m),
                 "sha256": sha256(m)} for m in big],
    }


def write_suite(path):
    """The suite for crates/wsx-testkit/src/bin/interop_client.rs: per message one kind
    byte (t/b), a 4-byte big-endian length and the payload; texts and binaries
    interleaved."""
    write_records(path, suite_order())


if __name__ == "__main__":
    import sys
    write_suite(sys.argv[1])
    write_records(sys.argv[2], bigs())
    print(json.dumps(expected()))
