"""The messages every interop test sends (Python side; interop/node/messages.mjs
mirrors it). Deterministic, so that runs can be compared."""

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


def write_suite(path):
    """The suite for crates/wsx/examples/interop_client.rs: per message one kind
    byte (t/b), a 4-byte big-endian length and the payload; texts and binaries
    interleaved."""
    ts, bs = texts(), binaries()
    order = []
    for k in range(max(len(ts), len(bs))):
        order += [("t", t.encode()) for t in ts[k:k + 1]] + [("b", b) for b in bs[k:k + 1]]
    with open(path, "wb") as f:
        for kind, data in order:
            f.write(kind.encode() + len(data).to_bytes(4, "big") + data)


if __name__ == "__main__":
    import sys
    write_suite(sys.argv[1])
