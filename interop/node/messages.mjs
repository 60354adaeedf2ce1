// The messages every interop test sends (mirrors interop/messages.py).

import { createHash } from 'node:crypto';

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

// ---- 16 MiB messages (mirrors messages.py: same bytes, same SHA-256) ----------------

// Exactly the default message limit of `wsx serve --max-message` and of the wsx client.
export const BIG = 16 << 20;

const WORDS = (
  'the of and to in is was for on that with as by at from this be are or an it not ' +
  'which have wsx frame deflate window socket ping pong close reason byte message text ' +
  'binary server client héllo wörld ünïcödé naïve café 日本語 你好 мир привет 🌍 🚀 ✓ ' +
  '— λ Ω alpha beta gamma delta echo foxtrot lima 42 1000'
).split(' ');
if (WORDS.length !== 63) throw new Error(`messages.mjs: ${WORDS.length} words, want 63`);

// BIG bytes of UTF-8 word salad picked by SHAKE-256(seed) (see messages.py).
function wordSalad(seed) {
  const vocab = [...WORDS.map((w) => Buffer.from(`${w} `)), Buffer.from('\n')];
  const rnd = createHash('shake256', { outputLength: BIG / 4 }).update(seed).digest();
  const parts = new Array(rnd.length);
  for (let k = 0; k < rnd.length; k++) parts[k] = vocab[rnd[k] & 63];
  const data = Buffer.concat(parts);
  if (data.length <= BIG) throw new Error('word salad too short');
  let cut = BIG;
  while ((data[cut] & 0xc0) === 0x80) cut--;
  const out = Buffer.alloc(BIG, '.');
  data.copy(out, 0, 0, cut);
  return out;
}

const PERMUTATION = Buffer.from(Array.from({ length: 256 }, (_, k) => (k * 167 + 13) & 0xff));

// The 16 MiB binary: a different salad, every byte permuted (computed once;
// callers must not modify it).
let bigBinaryCache = null;
function bigBinary() {
  if (bigBinaryCache === null) {
    const binary = wordSalad('wsx-interop big binary');
    for (let k = 0; k < binary.length; k++) binary[k] = PERMUTATION[binary[k]];
    bigBinaryCache = binary;
  }
  return bigBinaryCache;
}

// The 16 MiB messages in sending order: binary, then text ({ text } | { binary }).
export function bigs() {
  const text = wordSalad('wsx-interop big text').toString('utf8');
  return [{ binary: bigBinary() }, { text }];
}

// One byte over the limit: wsx must refuse it with 1009 (message too big).
export const OVERSIZE = BIG + 1;

// A binary message of OVERSIZE bytes: the 16 MiB binary and one byte more
// (mirrors messages.py oversize(): compressible, so far below the limit on the wire).
export function oversize() {
  return { binary: Buffer.concat([bigBinary(), Buffer.from('!')]) };
}

export function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}
