// Test images and small utilities for the emulator tests. The emulators only hash image bytes,
// but the images are real PNG/JPEG files so the same helpers serve upload tests elsewhere.

import { NOT_A_PLANT_MARKER } from "../../emulators/common";
import { bytesToBase64 } from "../../src/lib/images";
import { concatBytes, crc32, pngChunk } from "../helpers/images";

export { crc32 };

const concat = (parts: Uint8Array[]) => concatBytes(...parts);

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** zlib stream made of stored (uncompressed) deflate blocks. */
function zlibStored(data: Uint8Array): Uint8Array {
  const blocks: Uint8Array[] = [new Uint8Array([0x78, 0x01])];
  for (let offset = 0; offset < data.length || offset === 0; offset += 65535) {
    const block = data.subarray(offset, offset + 65535);
    const final = offset + 65535 >= data.length ? 1 : 0;
    const header = new Uint8Array([final, block.length & 0xff, block.length >> 8, ~block.length & 0xff, (~block.length >> 8) & 0xff]);
    blocks.push(header, block);
    if (data.length === 0) break;
  }
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  blocks.push(u32(((b << 16) | a) >>> 0));
  return concat(blocks);
}

export interface PngOptions {
  /** Changes the pixel colour, so different seeds give different bytes. */
  seed?: number;
  /** Stored in a tEXt chunk; use `notAPlantPng` for the emulators' non-plant marker. */
  comment?: string;
}

/** A valid RGB PNG of the given size (IHDR, optional tEXt, IDAT, IEND with correct CRCs). */
export function makePng(width: number, height: number, options: PngOptions = {}): Uint8Array {
  const seed = options.seed ?? 0;
  const row = new Uint8Array(1 + width * 3);
  for (let x = 0; x < width; x += 1) row.set([(seed * 37) & 0xff, (seed * 101 + 90) & 0xff, (seed * 13 + 40) & 0xff], 1 + x * 3);
  const raw = new Uint8Array(row.length * height);
  for (let y = 0; y < height; y += 1) raw.set(row, y * row.length);

  const ihdr = concat([u32(width), u32(height), new Uint8Array([8, 2, 0, 0, 0])]);
  const chunks = [pngChunk("IHDR", ihdr)];
  if (options.comment !== undefined) chunks.push(pngChunk("tEXt", new TextEncoder().encode(`Comment\0${options.comment}`)));
  chunks.push(pngChunk("IDAT", zlibStored(raw)), pngChunk("IEND", new Uint8Array()));
  return concat([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks]);
}

/** A PNG the emulators treat as "not a plant". */
export function notAPlantPng(seed = 0): Uint8Array {
  return makePng(4, 4, { seed, comment: NOT_A_PLANT_MARKER });
}

/** A JPEG header (SOI, JFIF APP0, SOF0 with the size, EOI): enough for type sniffing and hashing. */
export function makeJpeg(width: number, height: number, seed = 0): Uint8Array {
  return new Uint8Array([
    0xff,
    0xd8,
    0xff,
    0xe0,
    0x00,
    0x10,
    0x4a,
    0x46,
    0x49,
    0x46,
    0x00,
    0x01,
    0x01,
    0x00,
    0x00,
    0x01,
    0x00,
    0x01,
    0x00,
    0x00,
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    0x01,
    0x22,
    0x00,
    0x02,
    0x11,
    0x01,
    0x03,
    0x11,
    0x01,
    0xff,
    0xfe,
    0x00,
    0x04,
    seed & 0xff,
    (seed >> 8) & 0xff,
    0xff,
    0xd9,
  ]);
}

export interface PngChunkInfo {
  type: string;
  data: Uint8Array;
  crcValid: boolean;
}

/** Parses a PNG into chunks (null when the signature is wrong), checking every CRC. */
export function readPngChunks(bytes: Uint8Array): PngChunkInfo[] | null {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!signature.every((byte, i) => bytes[i] === byte)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: PngChunkInfo[] = [];
  for (let offset = 8; offset + 12 <= bytes.length; ) {
    const length = view.getUint32(offset);
    const typeAndData = bytes.subarray(offset + 4, offset + 8 + length);
    chunks.push({
      type: new TextDecoder().decode(typeAndData.subarray(0, 4)),
      data: typeAndData.subarray(4),
      crcValid: crc32(typeAndData) === view.getUint32(offset + 8 + length),
    });
    offset += 12 + length;
  }
  return chunks;
}

export async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export const toBase64 = bytesToBase64;

export function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

/** Multipart body with one `images` file and one `organs` field per image. */
export function plantNetForm(images: { bytes: Uint8Array; type?: string; organ?: string }[]): FormData {
  const form = new FormData();
  images.forEach((image, i) => {
    form.append("images", new Blob([image.bytes], { type: image.type ?? "image/png" }), `photo_${i}.png`);
    form.append("organs", image.organ ?? "leaf");
  });
  return form;
}

/** Milliseconds taken by `run` (workerd advances its clock across timers and I/O). */
export async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  const value = await run();
  return { value, ms: Date.now() - start };
}
