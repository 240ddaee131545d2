/**
 * Photos are stored and served without the metadata that can say where they were taken. A
 * phone's photo carries its GPS position (to a few metres) in EXIF or XMP; the community feed
 * rounds a shared request's coordinates to about 11 km, and anyone who fetched the photo itself
 * would otherwise read the garden's position from it.
 *
 * - JPEG: APP1 EXIF and XMP segments, APP2 MPF, APP11 (JUMBF: C2PA content credentials) and APP13 (Photoshop/IPTC) go, wherever they
 *   sit (before the first scan or between a progressive image's scans). An EXIF orientation
 *   other than "upright" is kept, in a new EXIF segment that holds nothing else, so the photo
 *   still shows the right way up. Everything after the image's end (EOI) goes too: cameras and
 *   phones append secondary images there (MPF: a preview, a depth map), each with EXIF and GPS
 *   of its own, and decoders never show them.
 * - PNG: `eXIf` (and the earlier `exIf`, `zxIf`) and `caBX` (C2PA) chunks and text chunks that hold EXIF or XMP (`iTXt` `XML:com.adobe.xmp`, and
 *   ImageMagick's `Raw profile type exif/xmp/iptc/app1/8bim`, in any case, in `tEXt`/`zTXt`/`iTXt`) go; other text
 *   chunks stay. Bytes after IEND go.
 * - WebP: `EXIF`, `XMP ` and `C2PA` chunks go, and VP8X's flags for EXIF and XMP are cleared.
 *
 * C2PA content credentials (a signed manifest some phones and editors now embed) hold their own
 * copy of the EXIF tags, GPS included, in a `stds.exif` assertion: they go whole (removing the
 * EXIF already breaks the signature that binds them to the file).
 *
 * The pixels are not touched. Runs after the structure checks (lib/images.ts), so the container
 * is known to be well formed; should it still not parse, the photo is refused rather than kept
 * with its metadata.
 */
import { concatBytes, fourcc, joinBytes, u16be, u16le, u32be, u32le } from "./bytes";

export class MetadataStripError extends Error {}

/**
 * Which version of this stripping cleaned a stored photo (services/photos.ts records it on each
 * R2 object). Raise it whenever what goes changes: every object without the current version is
 * cleaned again the next time it is served.
 * 1: everything above (EXIF/XMP/IPTC/MPF, C2PA, PNG exIf/zxIf, trailers).
 */
export const METADATA_STRIP_VERSION = 1;

/** The container formats uploads may use (lib/images.ts's ImageType). */
type Container = "jpeg" | "png" | "webp";

export function withoutLocationMetadata(bytes: Uint8Array, type: Container): Uint8Array {
  if (type === "jpeg") return stripJpeg(bytes);
  if (type === "png") return stripPng(bytes);
  return stripWebp(bytes);
}

const ascii = (b: Uint8Array, at: number, text: string) => {
  if (at + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
};

// ---- JPEG ------------------------------------------------------------------------------------

const EXIF_ID = "Exif\0\0";
const XMP_IDS = ["http://ns.adobe.com/xap/1.0/\0", "http://ns.adobe.com/xmp/extension/\0"];
/** APP2 Multi-Picture Format: offsets of the images after EOI, which are dropped with them. */
const MPF_ID = "MPF\0";

function stripJpeg(b: Uint8Array): Uint8Array {
  if (b[0] !== 0xff || b[1] !== 0xd8) throw new MetadataStripError("not a JPEG");
  const kept: Uint8Array[] = [b.subarray(0, 2)];
  let pos = 2;
  let stripped = false;
  for (;;) {
    if (pos >= b.length || b[pos] !== 0xff) throw new MetadataStripError("no marker where one was expected");
    let m = pos + 1;
    while (m < b.length && b[m] === 0xff) m++; // fill bytes
    const marker = b[m];
    if (marker === undefined) throw new MetadataStripError("the file ends before its end-of-image marker");
    // FF 00 is a stuffed byte, never a marker: read as a segment, its "length" could hide the
    // segments after it (an EXIF with GPS) from this walk while decoders skip it and read them.
    if (marker === 0x00) throw new MetadataStripError("no marker where one was expected");
    if (marker === 0xd9) {
      kept.push(b.subarray(pos, m + 1));
      if (m + 1 < b.length) stripped = true; // a trailer or appended images: dropped
      break;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      kept.push(b.subarray(pos, m + 1)); // a standalone marker
      pos = m + 1;
      if (marker >= 0xd0 && marker <= 0xd7) {
        // A restart marker found here (after fill bytes, FF FF D0, which end the data walk; or
        // stray, outside a scan): the entropy-coded data goes on after it, to the next marker.
        const next = entropyCodedEnd(b, pos);
        kept.push(b.subarray(pos, next));
        pos = next;
      }
      continue;
    }
    const end = m + 1 + u16be(b, m + 1);
    if (m + 3 > b.length || end > b.length) throw new MetadataStripError("a segment runs past the end");
    const payload = m + 3;
    if (marker === 0xe1 && ascii(b, payload, EXIF_ID)) {
      const orientation = exifOrientation(b.subarray(payload + EXIF_ID.length, end));
      if (orientation !== null && orientation !== 1) kept.push(orientationOnlyExif(orientation));
      stripped = true;
    } else if (
      (marker === 0xe1 && XMP_IDS.some((id) => ascii(b, payload, id))) ||
      (marker === 0xe2 && ascii(b, payload, MPF_ID)) ||
      marker === 0xeb ||
      marker === 0xed
    ) {
      stripped = true;
    } else {
      kept.push(b.subarray(pos, end));
    }
    pos = end;
    if (marker === 0xda) {
      // A scan's entropy-coded data runs to the next marker; it is kept as it is.
      const next = entropyCodedEnd(b, pos);
      kept.push(b.subarray(pos, next));
      pos = next;
    }
  }
  return stripped ? joinBytes(kept) : b;
}

/**
 * Where a scan's entropy-coded data ends: the first FF that starts a marker. Inside the data an
 * FF is always followed by 00 (a stuffed byte) or a restart marker (D0–D7); an FF FF is fill
 * before a marker. One plain pass, about a millisecond per MiB whatever the bytes are.
 */
function entropyCodedEnd(b: Uint8Array, from: number): number {
  for (let i = from; i + 1 < b.length; i++) {
    if (b[i] !== 0xff) continue;
    const next = b[i + 1]!;
    if (next !== 0x00 && (next < 0xd0 || next > 0xd7)) return i;
  }
  throw new MetadataStripError("the file ends before its end-of-image marker");
}

/** The Orientation tag (0x0112) of a TIFF structure's first IFD, or null. */
function exifOrientation(tiff: Uint8Array): number | null {
  if (tiff.length < 8) return null;
  const little = ascii(tiff, 0, "II");
  if (!little && !ascii(tiff, 0, "MM")) return null;
  const u16 = (at: number) => (little ? u16le(tiff, at) : u16be(tiff, at));
  const u32 = (at: number) => (little ? u32le(tiff, at) : u32be(tiff, at));
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return null;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return null;
    if (u16(entry) === 0x0112 && u16(entry + 2) === 3) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : null;
    }
  }
  return null;
}

/** An APP1 EXIF segment holding one tag: Orientation. */
function orientationOnlyExif(orientation: number): Uint8Array {
  const payload = [
    ...Array.from(EXIF_ID, (c) => c.charCodeAt(0)),
    0x4d,
    0x4d,
    0x00,
    0x2a,
    0x00,
    0x00,
    0x00,
    0x08, // big-endian TIFF, IFD0 at 8
    0x00,
    0x01, // one entry
    0x01,
    0x12,
    0x00,
    0x03,
    0x00,
    0x00,
    0x00,
    0x01,
    0x00,
    orientation,
    0x00,
    0x00, // Orientation, SHORT, 1
    0x00,
    0x00,
    0x00,
    0x00, // no next IFD
  ];
  const length = payload.length + 2;
  return new Uint8Array([0xff, 0xe1, length >> 8, length & 0xff, ...payload]);
}

// ---- PNG -------------------------------------------------------------------------------------

/**
 * Text chunk keywords whose value is EXIF, XMP or IPTC (Adobe's, and ImageMagick's raw profiles,
 * `8bim` being Photoshop's resource block that carries IPTC). Matched in lower case: the standard
 * makes keywords case-sensitive, but writers spell these differently (`APP1`, `8BIM`).
 */
const PNG_METADATA_KEYWORDS = new Set([
  "xml:com.adobe.xmp",
  "raw profile type exif",
  "raw profile type xmp",
  "raw profile type iptc",
  "raw profile type app1",
  "raw profile type 8bim",
]);

/** A tEXt, zTXt or iTXt chunk's keyword (Latin-1, up to 79 characters, NUL-terminated). */
function pngKeyword(b: Uint8Array, data: number, end: number): string {
  let k = data;
  while (k < end && k - data < 80 && b[k] !== 0) k++;
  return String.fromCharCode(...b.subarray(data, k));
}

function stripPng(b: Uint8Array): Uint8Array {
  const kept: Uint8Array[] = [b.subarray(0, 8)];
  let pos = 8;
  let stripped = false;
  while (pos < b.length) {
    if (pos + 12 > b.length) throw new MetadataStripError("a chunk runs past the end");
    const end = pos + 12 + u32be(b, pos);
    if (end > b.length) throw new MetadataStripError("a chunk runs past the end");
    const type = fourcc(b, pos + 4);
    const metadata =
      // exIf and zxIf (compressed): the names EXIF chunks had before eXIf was registered, which older writers still use.
      type === "eXIf" ||
      type === "exIf" ||
      type === "zxIf" ||
      type === "caBX" ||
      ((type === "iTXt" || type === "tEXt" || type === "zTXt") && PNG_METADATA_KEYWORDS.has(pngKeyword(b, pos + 8, end - 4).toLowerCase()));
    if (metadata) stripped = true;
    else kept.push(b.subarray(pos, end));
    pos = end;
    if (type === "IEND") {
      if (pos < b.length) stripped = true; // bytes after the image: dropped
      break;
    }
  }
  return stripped ? joinBytes(kept) : b;
}

// ---- WebP ------------------------------------------------------------------------------------

const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;

function stripWebp(b: Uint8Array): Uint8Array {
  if (!ascii(b, 0, "RIFF") || !ascii(b, 8, "WEBP")) throw new MetadataStripError("not a WebP");
  const kept: Uint8Array[] = [];
  let pos = 12;
  let stripped = false;
  while (pos + 8 <= b.length) {
    const size = u32le(b, pos + 4);
    const end = pos + 8 + size + (size & 1);
    if (end > b.length && pos + 8 + size !== b.length) throw new MetadataStripError("a chunk runs past the end");
    const chunk = b.subarray(pos, Math.min(end, b.length));
    const kind = fourcc(b, pos);
    if (kind === "EXIF" || kind === "XMP " || kind === "C2PA") {
      stripped = true;
    } else if (kind === "VP8X" && size >= 1) {
      const copy = chunk.slice();
      copy[8] = copy[8]! & ~(VP8X_EXIF | VP8X_XMP);
      if (copy[8] !== chunk[8]) stripped = true;
      kept.push(copy);
    } else {
      kept.push(chunk);
    }
    pos = end;
  }
  if (!stripped) return b;
  const body = joinBytes(kept);
  // The RIFF header as it was, with the size of what is left.
  const header = b.slice(0, 12);
  new DataView(header.buffer).setUint32(4, body.length + 4, true);
  return concatBytes(header, body);
}
