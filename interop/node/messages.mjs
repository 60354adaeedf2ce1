// The messages every interop test sends (mirrors interop/messages.py).

export function bigJson(minBytes = 100 * 1024) {
  const items = [];
  let doc = '';
  let i = 0;
  while (Buffer.byteLength(doc) < minBytes) {
    for (let k = 0; k < 100; k++, i++) {
      items.push({
        id: i,
        name: `item-${i}`,
        tags: ['alpha', 'beta', 'gamma'],
        value: (i * 7) % 1000,
        note: 'ünïcödé ✓ — 日本語',
      });
    }
    doc = JSON.stringify({ kind: 'wsx-interop', items });
  }
  return doc;
}

export const UTF8_SMALL = 'héllo wörld — 你好, мир 🌍🚀';

function lcgBytes(n, seed = 12345) {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let k = 0; k < n; k++) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
    out[k] = (x >> 16) & 0xff;
  }
  return out;
}

// [{ text: string } | { binary: Buffer }], in sending order.
export function suite() {
  const j = bigJson();
  const texts = [j, 'hi', UTF8_SMALL, UTF8_SMALL.repeat(300), j, 'x', ''];
  const pattern = Buffer.alloc(64 * 1024);
  for (let k = 0; k < pattern.length; k++) pattern[k] = ((k * 7) % 255) + 1;
  const every = Buffer.alloc(256 * 64);
  for (let k = 0; k < every.length; k++) every[k] = k % 256;
  const binaries = [Buffer.from([1, 2, 3, 254, 255]), pattern, lcgBytes(32 * 1024), every, Buffer.from([0]), Buffer.alloc(0)];
  return [...texts.map((text) => ({ text })), ...binaries.map((binary) => ({ binary }))];
}

export function payloadBytes(m) {
  return m.text !== undefined ? Buffer.from(m.text, 'utf8') : m.binary;
}
