/**
 * Image generators for tests. PNG and JPEG output is real and decodable; WebP output has correct
 * RIFF/VP8/VP8L/VP8X headers (dimensions parse) but minimal pixel data.
 *
 * Large dimensions stay cheap: `makePng` streams rows through CompressionStream and `makeJpeg`
 * encodes 6 bits per 8×8 block; for dimension-limit tests that must not allocate the pixels at
 * all, use `makePngHeaderOnly`. To reach a byte size, use `padToSize`.
 */

export interface MakePngOptions {
  /** Embedded as a tEXt "Seed" chunk and mixed into the pixel pattern: distinct seeds → distinct bytes. */
  seed?: string | number;
  /** Embedded as a tEXt "Comment" chunk (e.g. "NOTAPLANT" for the emulators' non-plant path). */
  text?: string;
}

export interface MakeJpegOptions {
  /** Embedded as a COM segment before the frame header: distinct comments → distinct bytes. */
  comment?: string;
  /** Alias of `comment` (same option name as makePng). */
  text?: string;
  /** Also embedded as a COM segment ("seed:<value>"). */
  seed?: string | number;
}

export type WebpKind = "VP8" | "VP8L" | "VP8X";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

// ---------------------------------------------------------------------------------------------
// CRC-32 (PNG chunks)

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(...parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) c = CRC_TABLE[(c ^ part[i]!) & 0xff]! ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u32be(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** One PNG chunk: length, type, data, CRC over type + data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const t = ascii(type);
  return concatBytes(u32be(data.length), t, data, u32be(crc32(t, data)));
}

function ihdr(width: number, height: number): Uint8Array {
  const data = new Uint8Array(13);
  data.set(u32be(width), 0);
  data.set(u32be(height), 4);
  data[8] = 8; // bit depth
  data[9] = 2; // colour type: truecolour RGB
  data[10] = 0; // compression: deflate
  data[11] = 0; // filter method 0
  data[12] = 0; // no interlace
  return data;
}

function seedNumber(seed: string | number | undefined): number {
  if (seed === undefined) return 0;
  const s = String(seed);
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** zlib (RFC 1950) stream of the chunks produced by `rows`, via CompressionStream("deflate"). */
async function zlibStream(chunks: Iterable<Uint8Array>): Promise<Uint8Array> {
  const cs = new CompressionStream("deflate");
  const writer = cs.writable.getWriter();
  const output = new Response(cs.readable).arrayBuffer(); // read concurrently: no backpressure stall
  for (const chunk of chunks) await writer.write(chunk as Uint8Array<ArrayBuffer>);
  await writer.close();
  return new Uint8Array(await output);
}

function* pngRows(width: number, height: number, seed: number): Generator<Uint8Array> {
  const rowBytes = 1 + width * 3;
  const rowsPerChunk = Math.max(1, Math.floor(65536 / rowBytes));
  const s = seed & 0xff;
  for (let y0 = 0; y0 < height; y0 += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, height - y0);
    const buf = new Uint8Array(rows * rowBytes);
    for (let r = 0; r < rows; r++) {
      const y = y0 + r;
      const base = r * rowBytes;
      buf[base] = 0; // filter type 0 (None)
      for (let x = 0; x < width; x++) {
        const p = base + 1 + x * 3;
        buf[p] = (x + s) & 0xff; // red ramps across
        buf[p + 1] = (y * 2 + 64) & 0xff; // green ramps down
        buf[p + 2] = ((x >> 3) + (y >> 3)) & 1 ? 200 : 40; // 8px checkerboard in blue
      }
    }
    yield buf;
  }
}

/**
 * A real, decodable 8-bit RGB PNG (filter 0 rows, zlib IDAT, correct CRCs). `seed` and `text`
 * become tEXt chunks so that equal sizes still give distinct bytes.
 */
export async function makePng(width: number, height: number, opts: MakePngOptions = {}): Promise<Uint8Array> {
  const parts: Uint8Array[] = [new Uint8Array(PNG_SIGNATURE), pngChunk("IHDR", ihdr(width, height))];
  if (opts.seed !== undefined) parts.push(pngChunk("tEXt", concatBytes(ascii("Seed\0"), utf8(String(opts.seed)))));
  if (opts.text !== undefined) parts.push(pngChunk("tEXt", concatBytes(ascii("Comment\0"), utf8(opts.text))));
  parts.push(pngChunk("IDAT", await zlibStream(pngRows(width, height, seedNumber(opts.seed)))));
  parts.push(pngChunk("IEND", new Uint8Array(0)));
  return concatBytes(...parts);
}

/**
 * A PNG whose IHDR claims width×height but whose IDAT holds no pixels (not decodable). For
 * dimension-limit tests (e.g. 9000×300, 7500×6000) without allocating the pixels.
 */
export function makePngHeaderOnly(width: number, height: number): Uint8Array {
  return concatBytes(
    new Uint8Array(PNG_SIGNATURE),
    pngChunk("IHDR", ihdr(width, height)),
    pngChunk("IDAT", new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), // zlib("")
    pngChunk("IEND", new Uint8Array(0)),
  );
}

// ---------------------------------------------------------------------------------------------
// JPEG: baseline, one 8-bit grey component, uniform mid-grey (every block DC diff 0 + EOB).

/** Luminance quantisation table (ITU T.81 K.1), in zigzag order. Unused by the all-zero blocks. */
const JPEG_QT = [
  16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40, 26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51, 56, 55,
  64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87, 95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
];

/** Standard luminance DC table (ITU T.81 K.3). Category 0 → code "00". */
const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/** Standard luminance AC table (ITU T.81 K.3). EOB (0x00) → code "1010". */
const AC_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
// prettier-ignore
const AC_VALS = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1,
  0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26,
  0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56,
  0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85,
  0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
  0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6,
  0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
  0xfa,
];

/** A marker segment: FF <marker> <length incl. itself> <payload>. */
export function jpegSegment(marker: number, payload: Uint8Array): Uint8Array {
  const length = payload.length + 2;
  if (length > 0xffff) throw new Error(`JPEG segment too long: ${length}`);
  return concatBytes(new Uint8Array([0xff, marker, length >> 8, length & 0xff]), payload);
}

/** Entropy-coded data: per block the DC code "00" (diff 0) then the AC EOB "1010"; 1-padded; FF-stuffed. */
function jpegScan(blocks: number): Uint8Array {
  const totalBits = blocks * 6;
  const raw = new Uint8Array(Math.ceil(totalBits / 8));
  const pattern = 0b001010;
  let bitPos = 0;
  for (let b = 0; b < blocks; b++) {
    for (let k = 5; k >= 0; k--) {
      if ((pattern >> k) & 1) raw[bitPos >> 3]! |= 0x80 >> (bitPos & 7);
      bitPos++;
    }
  }
  for (; bitPos & 7; bitPos++) raw[bitPos >> 3]! |= 0x80 >> (bitPos & 7); // pad with 1-bits
  const out: number[] = [];
  for (const byte of raw) {
    out.push(byte);
    if (byte === 0xff) out.push(0x00);
  }
  return new Uint8Array(out);
}

/**
 * A minimal baseline JPEG a browser decodes to a uniform mid-grey width×height image:
 * SOI, APP0 JFIF, [COM], DQT, SOF0, DHT (DC + AC), SOS, entropy data, EOI.
 */
export function makeJpeg(width: number, height: number, opts: MakeJpegOptions = {}): Uint8Array {
  if (width < 1 || height < 1 || width > 0xffff || height > 0xffff) throw new Error("JPEG sides must be 1..65535");
  const parts: Uint8Array[] = [new Uint8Array([0xff, 0xd8])];
  parts.push(
    jpegSegment(0xe0, new Uint8Array([0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0])), // JFIF 1.1, 1:1
  );
  const comment = opts.comment ?? opts.text;
  if (comment !== undefined) parts.push(jpegSegment(0xfe, utf8(comment)));
  if (opts.seed !== undefined) parts.push(jpegSegment(0xfe, utf8(`seed:${opts.seed}`)));
  parts.push(jpegSegment(0xdb, new Uint8Array([0x00, ...JPEG_QT]))); // 8-bit table 0
  parts.push(
    jpegSegment(0xc0, new Uint8Array([8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, /* id */ 1, /* 1x1 */ 0x11, /* QT */ 0])),
  );
  parts.push(jpegSegment(0xc4, new Uint8Array([0x00, ...DC_BITS, ...DC_VALS, 0x10, ...AC_BITS, ...AC_VALS])));
  parts.push(jpegSegment(0xda, new Uint8Array([1, /* comp */ 1, /* DC0 AC0 */ 0x00, /* Ss */ 0, /* Se */ 63, /* Ah Al */ 0])));
  parts.push(jpegScan(Math.ceil(width / 8) * Math.ceil(height / 8)));
  parts.push(new Uint8Array([0xff, 0xd9]));
  return concatBytes(...parts);
}

// ---------------------------------------------------------------------------------------------
// WebP

function u32le(n: number): Uint8Array {
  return new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
}

function riffChunk(fourcc: string, data: Uint8Array): Uint8Array {
  const pad = data.length & 1 ? new Uint8Array(1) : new Uint8Array(0);
  return concatBytes(ascii(fourcc), u32le(data.length), data, pad);
}

function vp8Payload(width: number, height: number): Uint8Array {
  const w = Math.min(width, 0x3fff);
  const h = Math.min(height, 0x3fff);
  const partition = new Uint8Array(16); // minimal (not decodable) first partition
  const size = partition.length;
  // Frame tag: key frame (bit 0 = 0), version 0, show_frame (bit 4), first partition size << 5.
  const tag = (size << 5) | 0x10;
  return concatBytes(
    new Uint8Array([tag & 0xff, (tag >> 8) & 0xff, (tag >> 16) & 0xff, 0x9d, 0x01, 0x2a]),
    new Uint8Array([w & 0xff, w >> 8, h & 0xff, h >> 8]), // scale bits 0
    partition,
  );
}

function vp8lPayload(width: number, height: number): Uint8Array {
  const w = width - 1;
  const h = height - 1;
  // 14 bits width-1, 14 bits height-1, alpha 0, version 0 — packed little-endian after 0x2f.
  const bits = (w & 0x3fff) | ((h & 0x3fff) << 14);
  return concatBytes(new Uint8Array([0x2f]), u32le(bits >>> 0), new Uint8Array(8));
}

/**
 * Header-correct WebP bytes: simple lossy ("VP8 ", sides ≤ 16383), simple lossless ("VP8L",
 * sides ≤ 16384) or extended ("VP8X" canvas, sides ≤ 2^24, followed by a VP8 chunk).
 */
export function makeWebp(kind: WebpKind, width: number, height: number): Uint8Array {
  let body: Uint8Array;
  if (kind === "VP8") {
    body = riffChunk("VP8 ", vp8Payload(width, height));
  } else if (kind === "VP8L") {
    body = riffChunk("VP8L", vp8lPayload(width, height));
  } else {
    const w = width - 1;
    const h = height - 1;
    const vp8x = new Uint8Array([
      0x00,
      0,
      0,
      0, // flags (none), reserved
      w & 0xff,
      (w >> 8) & 0xff,
      (w >> 16) & 0xff,
      h & 0xff,
      (h >> 8) & 0xff,
      (h >> 16) & 0xff,
    ]);
    body = concatBytes(riffChunk("VP8X", vp8x), riffChunk("VP8 ", vp8Payload(width, height)));
  }
  const webp = ascii("WEBP");
  return concatBytes(ascii("RIFF"), u32le(webp.length + body.length), webp, body);
}

// ---------------------------------------------------------------------------------------------
// Padding

/**
 * Grows an image to exactly `size` bytes without changing what it decodes to: a PNG gets a
 * private ancillary `zzPd` chunk (valid CRC) before IEND; a JPEG gets APP15 segments after SOI.
 */
export function padToSize(image: Uint8Array, size: number): Uint8Array {
  const extra = size - image.length;
  if (extra === 0) return image;
  if (image[0] === 0x89 && image[1] === 0x50) {
    if (extra < 12) throw new Error(`cannot pad a PNG by ${extra} bytes (a chunk takes at least 12)`);
    const iend = image.length - 12; // IEND is always the last 12 bytes of our PNGs
    if (String.fromCharCode(...image.subarray(iend + 4, iend + 8)) !== "IEND") throw new Error("PNG must end with IEND");
    const data = new Uint8Array(extra - 12);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    return concatBytes(image.subarray(0, iend), pngChunk("zzPd", data), image.subarray(iend));
  }
  if (image[0] === 0xff && image[1] === 0xd8) {
    if (extra < 4) throw new Error(`cannot pad a JPEG by ${extra} bytes (a segment takes at least 4)`);
    const segments: Uint8Array[] = [];
    let left = extra;
    while (left > 0) {
      let take = Math.min(left, 0xffff + 2); // marker (2) + length (2) + up to 65533 payload
      if (left - take > 0 && left - take < 4) take -= 4; // never leave a remainder too small for a segment
      segments.push(jpegSegment(0xef, new Uint8Array(take - 4)));
      left -= take;
    }
    return concatBytes(image.subarray(0, 2), ...segments, image.subarray(2));
  }
  throw new Error("padToSize supports PNG and JPEG");
}
