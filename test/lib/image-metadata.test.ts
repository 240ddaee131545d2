import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { imageStructureProblem, readImageDimensions, UPLOAD_RULES, validateImageUpload } from "../../src/lib/images";
import { concatBytes, jpegSegment, makeJpeg, makePng, makeWebp, pngChunk } from "../helpers/images";

const text = (s: string) => new TextEncoder().encode(s);
const has = (bytes: Uint8Array, s: string) => Buffer.from(bytes).includes(Buffer.from(s, "latin1"));

/** A little-endian EXIF block: Orientation in IFD0 and a GPS IFD holding a latitude "51.5074". */
function exifWithGps(orientation: number): Uint8Array {
  const b: number[] = [];
  const u16 = (n: number) => b.push(n & 0xff, (n >> 8) & 0xff);
  const u32 = (n: number) => b.push(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
  b.push(0x49, 0x49, 0x2a, 0x00);
  u32(8); // IFD0 at 8
  u16(2); // two entries
  // Orientation (SHORT), then the GPSInfo IFD pointer (LONG) → offset 38.
  for (const n of [0x0112, 3]) u16(n);
  u32(1);
  u16(orientation);
  u16(0);
  for (const n of [0x8825, 4]) u16(n);
  u32(1);
  u32(38);
  u32(0); // no next IFD
  // GPS IFD at 38: GPSLatitudeRef "N" and a marker string standing for the coordinates.
  u16(1);
  for (const n of [0x0001, 2]) u16(n);
  u32(2);
  b.push(0x4e, 0, 0, 0);
  u32(0);
  return concatBytes(text("Exif\0\0"), new Uint8Array(b), text("GPS 51.5074 N -0.1278 E"));
}

function jpegWith(...segments: Uint8Array[]): Uint8Array {
  const plain = makeJpeg(320, 240, { comment: "a fern" });
  return concatBytes(plain.subarray(0, 2), ...segments, plain.subarray(2));
}

/** Where the first SOS marker (FF DA) starts. */
function startOfScan(jpeg: Uint8Array): number {
  return Buffer.from(jpeg).indexOf(Buffer.from([0xff, 0xda]));
}

async function stored(bytes: Uint8Array, mime: string) {
  const result = await validateImageUpload({ bytes, declaredType: mime, filename: "photo" }, UPLOAD_RULES);
  if (!result.ok) throw new Error(`refused: ${result.message}`);
  return result.image;
}

describe("photos are stored without where they were taken", () => {
  it("JPEG: EXIF (GPS), XMP and IPTC go; a turned photo keeps its orientation; the pixels and comments stay", async () => {
    const xmp = jpegSegment(0xe1, text('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta exif:GPSLatitude="51,30.44N"/>'));
    const iptc = jpegSegment(0xed, text("Photoshop 3.0\0 8BIM Sublocation: 4 Elm Row"));
    const upload = jpegWith(jpegSegment(0xe1, exifWithGps(6)), xmp, iptc);
    const image = await stored(upload, "image/jpeg");
    for (const secret of ["GPS 51.5074", "GPSLatitude", "Elm Row", "ns.adobe.com"]) expect(has(image.bytes, secret), secret).toBe(false);
    expect(has(upload, "GPS 51.5074")).toBe(true);
    // Orientation 6 survives, alone, in a fresh EXIF segment.
    expect(has(image.bytes, "Exif\0\0MM")).toBe(true);
    expect(Buffer.from(image.bytes).includes(Buffer.from([0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06]))).toBe(true);
    expect(has(image.bytes, "a fern")).toBe(true);
    expect(readImageDimensions(image.bytes, "jpeg")).toEqual({ width: 320, height: 240 });
    expect(imageStructureProblem(image.bytes, "jpeg")).toBeNull();
    // The scan is untouched: the stored file ends with the upload's scan and EOI.
    const scan = upload.subarray(upload.lastIndexOf(0xda) - 1);
    expect(Buffer.from(image.bytes.subarray(image.bytes.length - scan.length)).equals(Buffer.from(scan))).toBe(true);
    expect(image.sha256).toBe(await sha256Hex(image.bytes));
    expect(image.sizeBytes).toBe(image.bytes.length);
  });

  it("JPEG: an upright photo's EXIF goes entirely; a photo without metadata is stored byte for byte", async () => {
    const upright = await stored(jpegWith(jpegSegment(0xe1, exifWithGps(1))), "image/jpeg");
    expect(has(upright.bytes, "Exif")).toBe(false);
    const plain = makeJpeg(320, 240);
    const same = await stored(plain, "image/jpeg");
    expect(Buffer.from(same.bytes).equals(Buffer.from(plain))).toBe(true);
    expect(same.sha256).toBe(await sha256Hex(plain));
  });

  it("JPEG: images appended after the end (MPF previews, with EXIF and GPS of their own) go, and metadata between scans", async () => {
    const mpf = jpegSegment(0xe2, text("MPF\0MM\0*\0\0\0\boffsets of the appended images"));
    const primary = jpegWith(jpegSegment(0xe1, exifWithGps(1)), mpf);
    // A second scan after the first, with XMP between them (as a progressive file may have it).
    const sos = startOfScan(primary);
    const secondScan = primary.subarray(sos, primary.length - 2);
    const xmp = jpegSegment(0xe1, text('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta exif:GPSLatitude="51,30.44N"/>'));
    const twoScans = concatBytes(primary.subarray(0, primary.length - 2), xmp, secondScan, new Uint8Array([0xff, 0xd9]));
    const preview = concatBytes(makeJpeg(160, 120).subarray(0, 2), jpegSegment(0xe1, exifWithGps(1)), makeJpeg(160, 120).subarray(2));
    const upload = concatBytes(twoScans, preview, text("trailer: GPS 51.5074 N"));
    expect(imageStructureProblem(upload, "jpeg")).toBeNull();

    const image = await stored(upload, "image/jpeg");
    for (const secret of ["GPS 51.5074", "GPSLatitude", "MPF", "Exif", "trailer"]) expect(has(image.bytes, secret), secret).toBe(false);
    // What is left is the primary image: its segments, both scans as they were, and its EOI.
    const plain = jpegWith();
    const plainScan = plain.subarray(startOfScan(plain), plain.length - 2);
    expect(
      Buffer.from(image.bytes).equals(
        Buffer.from(concatBytes(plain.subarray(0, plain.length - 2), plainScan, new Uint8Array([0xff, 0xd9]))),
      ),
    ).toBe(true);
    expect(readImageDimensions(image.bytes, "jpeg")).toEqual({ width: 320, height: 240 });
    expect(imageStructureProblem(image.bytes, "jpeg")).toBeNull();
  });

  it("JPEG: a file whose only end marker hides inside a segment after the scan is refused, not stored with what follows", async () => {
    const plain = makeJpeg(320, 240);
    const hidden = jpegSegment(0xfe, concatBytes(new Uint8Array([0xff, 0xd9]), text("GPS 51.5074 N")));
    const upload = concatBytes(plain.subarray(0, plain.length - 2), hidden);
    expect(imageStructureProblem(upload, "jpeg")).toBeNull(); // the quick check sees an FF D9
    const result = await validateImageUpload({ bytes: upload, declaredType: "image/jpeg", filename: "photo" }, UPLOAD_RULES);
    expect(result).toMatchObject({ ok: false, code: "INVALID_IMAGE" });
  });

  it("JPEG: fill bytes before a restart marker inside a scan (FF FF D0, which the standard allows) are kept, not refused", async () => {
    const plain = jpegWith();
    // The scan's data, a restart marker after two fill bytes, and more data, as some encoders write it.
    const upload = concatBytes(
      jpegWith(jpegSegment(0xe1, exifWithGps(1))).subarray(0, -2),
      new Uint8Array([0xff, 0xff, 0xd0, 0x12, 0x34, 0xff, 0x00, 0x56]),
      new Uint8Array([0xff, 0xd9]),
    );
    const image = await stored(upload, "image/jpeg");
    expect(has(image.bytes, "GPS 51.5074")).toBe(false);
    const expected = concatBytes(plain.subarray(0, -2), new Uint8Array([0xff, 0xff, 0xd0, 0x12, 0x34, 0xff, 0x00, 0x56, 0xff, 0xd9]));
    expect(Buffer.from(image.bytes).equals(Buffer.from(expected))).toBe(true);
  });

  it("JPEG: a stuffed byte (FF 00) where a marker belongs is refused, not read as a segment that hides the EXIF after it", async () => {
    const plain = makeJpeg(320, 240);
    const exif = jpegSegment(0xe1, exifWithGps(1));
    // FF 00 and a "length" that spans the EXIF segment: a walk that took it for a segment would
    // keep the EXIF inside it, while decoders and EXIF readers skip FF 00 and read the EXIF.
    const span = 2 + exif.length;
    const upload = concatBytes(plain.subarray(0, 2), new Uint8Array([0xff, 0x00, span >> 8, span & 0xff]), exif, plain.subarray(2));
    const result = await validateImageUpload({ bytes: upload, declaredType: "image/jpeg", filename: "photo" }, UPLOAD_RULES);
    if (result.ok) expect(has(result.image.bytes, "GPS 51.5074")).toBe(false);
    expect(result).toMatchObject({ ok: false, code: "INVALID_IMAGE" });
  });

  it("JPEG: a file of 200 000 tiny markers is stripped, not a crash (the kept parts are joined without spreading them)", async () => {
    const markers = new Uint8Array(400_000);
    for (let i = 0; i < markers.length; i += 2) [markers[i], markers[i + 1]] = [0xff, 0x01];
    const image = await stored(jpegWith(jpegSegment(0xe1, exifWithGps(1)), markers), "image/jpeg");
    expect(has(image.bytes, "GPS 51.5074")).toBe(false);
    expect(image.bytes.length).toBe(jpegWith(markers).length);
  });

  it("PNG: EXIF and XMP in text chunks (ImageMagick's raw profiles) and bytes after IEND go", async () => {
    const png = await makePng(320, 240, { text: "a comment" });
    const iend = png.length - 12;
    const upload = concatBytes(
      png.subarray(0, iend),
      pngChunk("zTXt", text("Raw profile type exif\0\0GPS 51.5074 N (compressed, say)")),
      pngChunk("tEXt", text("Raw profile type xmp\0<x:xmpmeta GPSLatitude='51,30.44N'/>")),
      pngChunk("tEXt", text("Raw profile type 8bim\0\n8BIM IPTC Sublocation: 4 Elm Row")),
      pngChunk("tEXt", text("Raw profile type EXIF\0GPS 51.5074 N, in capitals")),
      png.subarray(iend),
      text("appended: GPS 51.5074 N"),
    );
    expect(imageStructureProblem(upload, "png")).toBeNull();
    const image = await stored(upload, "image/png");
    for (const secret of ["GPS 51.5074", "GPSLatitude", "Elm Row", "Raw profile", "appended"])
      expect(has(image.bytes, secret), secret).toBe(false);
    expect(has(image.bytes, "a comment")).toBe(true);
    expect(Buffer.from(image.bytes).equals(Buffer.from(png))).toBe(true);
  });

  it("PNG: eXIf (and exIf, zxIf: its names before it was registered) and XMP chunks go, other text chunks stay", async () => {
    const png = await makePng(320, 240, { text: "a comment" });
    const iend = png.length - 12;
    const upload = concatBytes(
      png.subarray(0, iend),
      pngChunk("eXIf", exifWithGps(1).subarray(6)),
      pngChunk("exIf", exifWithGps(1).subarray(6)),
      pngChunk("zxIf", text("GPS 51.5074 N (compressed, say)")),
      pngChunk("iTXt", text("XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta GPSLatitude='51,30.44N'/>")),
      png.subarray(iend),
    );
    const image = await stored(upload, "image/png");
    expect(has(image.bytes, "GPS 51.5074")).toBe(false);
    expect(has(image.bytes, "GPSLatitude")).toBe(false);
    expect(has(image.bytes, "eXIf")).toBe(false);
    expect(has(image.bytes, "a comment")).toBe(true);
    expect(imageStructureProblem(image.bytes, "png")).toBeNull();
    expect(image.bytes.length).toBe(png.length);
  });

  it("C2PA content credentials (JUMBF: JPEG APP11, PNG caBX, WebP C2PA) go: their stds.exif assertion carries GPS too", async () => {
    // A C2PA manifest store is JUMBF boxes; its `stds.exif` assertion holds EXIF tags as JSON-LD.
    const manifest = text('JP\0\x01\0\0\0\x01jumbc2pa{"label":"stds.exif","data":{"exif:GPSLatitude":"51,30.44N"}} GPS 51.5074 N');
    const jpeg = await stored(jpegWith(jpegSegment(0xeb, manifest)), "image/jpeg");
    expect(has(jpeg.bytes, "GPS 51.5074")).toBe(false);
    expect(has(jpeg.bytes, "jumb")).toBe(false);
    expect(readImageDimensions(jpeg.bytes, "jpeg")).toEqual({ width: 320, height: 240 });
    expect(imageStructureProblem(jpeg.bytes, "jpeg")).toBeNull();

    const png = await makePng(320, 240, { text: "a comment" });
    const iend = png.length - 12;
    const pngImage = await stored(concatBytes(png.subarray(0, iend), pngChunk("caBX", manifest), png.subarray(iend)), "image/png");
    expect(has(pngImage.bytes, "GPS 51.5074")).toBe(false);
    expect(Buffer.from(pngImage.bytes).equals(Buffer.from(png))).toBe(true);

    const base = makeWebp("VP8X", 320, 240);
    const size = new Uint8Array([manifest.length & 0xff, (manifest.length >> 8) & 0xff, 0, 0]);
    const body = concatBytes(base.subarray(12), text("C2PA"), size, manifest, manifest.length & 1 ? new Uint8Array(1) : new Uint8Array(0));
    const riff = body.length + 4;
    const webp = concatBytes(text("RIFF"), new Uint8Array([riff & 0xff, (riff >> 8) & 0xff, 0, 0]), text("WEBP"), body);
    expect(imageStructureProblem(webp, "webp")).toBeNull();
    const webpImage = await stored(webp, "image/webp");
    expect(has(webpImage.bytes, "GPS 51.5074")).toBe(false);
    expect(new DataView(webpImage.bytes.buffer, webpImage.bytes.byteOffset).getUint32(4, true)).toBe(webpImage.bytes.length - 8);
    expect(readImageDimensions(webpImage.bytes, "webp")).toEqual({ width: 320, height: 240 });
  });

  it("WebP: EXIF and XMP chunks go, VP8X's flags for them are cleared and the RIFF size fits", async () => {
    const base = makeWebp("VP8X", 320, 240);
    const chunk = (fourcc: string, data: Uint8Array) => {
      const size = new Uint8Array([data.length & 0xff, (data.length >> 8) & 0xff, 0, 0]);
      return concatBytes(text(fourcc), size, data, data.length & 1 ? new Uint8Array(1) : new Uint8Array(0));
    };
    const body = concatBytes(
      base.subarray(12),
      chunk("EXIF", exifWithGps(1).subarray(6)),
      chunk("XMP ", text("<x:xmpmeta GPSLatitude='51N'/>")),
    );
    const flagged = body.slice();
    flagged[8] = 0x08 | 0x04; // VP8X: EXIF and XMP present
    const size = flagged.length + 4;
    const upload = concatBytes(text("RIFF"), new Uint8Array([size & 0xff, (size >> 8) & 0xff, 0, 0]), text("WEBP"), flagged);
    expect(imageStructureProblem(upload, "webp")).toBeNull();
    const image = await stored(upload, "image/webp");
    expect(has(image.bytes, "GPS 51.5074")).toBe(false);
    expect(has(image.bytes, "XMP ")).toBe(false);
    expect(image.bytes[20]! & 0x0c).toBe(0);
    expect(new DataView(image.bytes.buffer, image.bytes.byteOffset).getUint32(4, true)).toBe(image.bytes.length - 8);
    expect(imageStructureProblem(image.bytes, "webp")).toBeNull();
    expect(readImageDimensions(image.bytes, "webp")).toEqual({ width: 320, height: 240 });
  });
});
