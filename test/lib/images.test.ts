import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import {
  AVATAR_RULES,
  UPLOAD_RULES,
  bytesToBase64,
  imageStructureProblem,
  portableBytesToBase64,
  readImageDimensions,
  sniffImageType,
  validateImageUpload,
  type ImageRules,
} from "../../src/lib/images";
import { concatBytes, crc32, jpegSegment, makeJpeg, makePng, makePngHeaderOnly, makeWebp, padToSize, pngChunk } from "../helpers/images";

const MIB = 1024 * 1024;
const text = (s: string) => new TextEncoder().encode(s);

async function expectRejected(
  input: Parameters<typeof validateImageUpload>[0],
  code: string,
  message: string,
  rules: ImageRules = UPLOAD_RULES,
) {
  const result = await validateImageUpload(input, rules);
  expect(result).toEqual({ ok: false, code, message });
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("sniffImageType", () => {
  it("recognises JPEG, PNG and WebP magic bytes", async () => {
    expect(sniffImageType(makeJpeg(8, 8))).toBe("jpeg");
    expect(sniffImageType(await makePng(2, 2))).toBe("png");
    for (const kind of ["VP8", "VP8L", "VP8X"] as const) expect(sniffImageType(makeWebp(kind, 10, 10))).toBe("webp");
  });

  it("rejects everything else, including too-short prefixes", () => {
    expect(sniffImageType(new Uint8Array())).toBeNull();
    expect(sniffImageType(new Uint8Array([0xff, 0xd8]))).toBeNull();
    expect(sniffImageType(new Uint8Array([0x89, 0x50, 0x4e, 0x47]))).toBeNull();
    expect(sniffImageType(text("GIF89a......"))).toBeNull();
    expect(sniffImageType(text("RIFF\0\0\0\0WAVEfmt "))).toBeNull();
    expect(sniffImageType(text("<svg xmlns='http://www.w3.org/2000/svg'/>"))).toBeNull();
  });
});

describe("readImageDimensions: PNG", () => {
  it("reads IHDR", async () => {
    expect(readImageDimensions(await makePng(333, 77), "png")).toEqual({ width: 333, height: 77 });
    expect(readImageDimensions(makePngHeaderOnly(9000, 300), "png")).toEqual({ width: 9000, height: 300 });
  });

  it("returns null for truncated or malformed headers", async () => {
    const png = await makePng(20, 10);
    for (let n = 0; n < 24; n++) expect(readImageDimensions(png.subarray(0, n), "png")).toBeNull();
    const notIhdr = png.slice();
    notIhdr[12] = 0x58; // "XHDR"
    expect(readImageDimensions(notIhdr, "png")).toBeNull();
    expect(readImageDimensions(makePngHeaderOnly(0, 10), "png")).toBeNull();
  });
});

describe("readImageDimensions: JPEG", () => {
  const SOI = new Uint8Array([0xff, 0xd8]);
  const sof = (marker: number, width: number, height: number) =>
    jpegSegment(marker, new Uint8Array([8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]));

  it("reads SOF0 of a generated baseline JPEG", () => {
    expect(readImageDimensions(makeJpeg(640, 480), "jpeg")).toEqual({ width: 640, height: 480 });
    expect(readImageDimensions(makeJpeg(1, 65535), "jpeg")).toEqual({ width: 1, height: 65535 });
  });

  it("walks APPn, COM and DQT segments before the frame header", () => {
    const exif = jpegSegment(0xe1, concatBytes(text("Exif\0\0"), new Uint8Array(3000).fill(0xff)));
    const icc = jpegSegment(0xe2, new Uint8Array(600).fill(0xc0)); // payload full of fake SOF bytes
    const bytes = concatBytes(SOI, exif, icc, jpegSegment(0xfe, text("comment")), sof(0xc0, 1234, 567));
    expect(readImageDimensions(bytes, "jpeg")).toEqual({ width: 1234, height: 567 });
  });

  it("skips 0xFF fill bytes before markers", () => {
    const fill = new Uint8Array(7).fill(0xff);
    const bytes = concatBytes(SOI, fill, jpegSegment(0xe0, text("JFIF\0")), fill, sof(0xc0, 300, 400));
    // jpegSegment starts with FF, so "fill + segment" is FF×8 then the marker code.
    expect(readImageDimensions(bytes, "jpeg")).toEqual({ width: 300, height: 400 });
  });

  it("steps over standalone markers (TEM, RST0-7, SOI) without a length", () => {
    const standalone = new Uint8Array([0xff, 0x01, 0xff, 0xd0, 0xff, 0xd7, 0xff, 0xd8]);
    const bytes = concatBytes(SOI, standalone, sof(0xc2, 250, 260));
    expect(readImageDimensions(bytes, "jpeg")).toEqual({ width: 250, height: 260 });
  });

  it("does not mistake DHT (C4), JPG (C8) or DAC (CC) for a frame header", () => {
    const lookalike = (m: number) => jpegSegment(m, new Uint8Array([8, 0, 9, 0, 9, 1, 1, 0x11, 0]));
    const bytes = concatBytes(SOI, lookalike(0xc4), lookalike(0xc8), lookalike(0xcc), sof(0xc1, 800, 600));
    expect(readImageDimensions(bytes, "jpeg")).toEqual({ width: 800, height: 600 });
  });

  it("accepts every SOFn: baseline, extended, progressive, lossless, arithmetic", () => {
    for (const m of [0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]) {
      expect(readImageDimensions(concatBytes(SOI, sof(m, 210, 220)), "jpeg")).toEqual({ width: 210, height: 220 });
    }
  });

  it("returns null, without throwing, for every truncation of a JPEG header", () => {
    const jpeg = makeJpeg(300, 200, { comment: "x".repeat(50) });
    const sofAt = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
    for (let n = 0; n < sofAt + 9; n++) expect(readImageDimensions(jpeg.subarray(0, n), "jpeg")).toBeNull();
    expect(readImageDimensions(jpeg.subarray(0, sofAt + 9), "jpeg")).toEqual({ width: 300, height: 200 });
  });

  it("returns null for SOS or EOI before any frame header, bad lengths, and DNL heights", () => {
    expect(readImageDimensions(concatBytes(SOI, new Uint8Array([0xff, 0xda, 0, 2])), "jpeg")).toBeNull();
    expect(readImageDimensions(concatBytes(SOI, new Uint8Array([0xff, 0xd9])), "jpeg")).toBeNull();
    expect(readImageDimensions(concatBytes(SOI, new Uint8Array([0xff, 0xe0, 0, 0, 0xff, 0xc0])), "jpeg")).toBeNull();
    expect(readImageDimensions(concatBytes(SOI, new Uint8Array([0xff, 0xc0, 0, 5, 8, 1, 0])), "jpeg")).toBeNull();
    expect(readImageDimensions(concatBytes(SOI, sof(0xc0, 300, 0)), "jpeg")).toBeNull();
    expect(readImageDimensions(concatBytes(SOI, new Uint8Array(10_000).fill(0xff)), "jpeg")).toBeNull();
    expect(readImageDimensions(new Uint8Array([0xff, 0xd8, 0xff]), "jpeg")).toBeNull();
  });

  it("terminates on adversarial input (segments of length 2, garbage bytes)", () => {
    const loops = new Uint8Array(200_000);
    for (let i = 2; i + 4 <= loops.length; i += 4) loops.set([0xff, 0xe0, 0x00, 0x02], i);
    loops.set([0xff, 0xd8], 0);
    expect(readImageDimensions(loops, "jpeg")).toBeNull();
    const garbage = concatBytes(SOI, new Uint8Array(50_000).fill(0x41));
    expect(readImageDimensions(garbage, "jpeg")).toBeNull();
  });
});

describe("readImageDimensions: WebP", () => {
  it("reads lossy VP8 (14-bit sides after the 9d 01 2a start code)", () => {
    expect(readImageDimensions(makeWebp("VP8", 640, 480), "webp")).toEqual({ width: 640, height: 480 });
    expect(readImageDimensions(makeWebp("VP8", 16383, 1), "webp")).toEqual({ width: 16383, height: 1 });
  });

  it("ignores the VP8 upscaling bits", () => {
    const webp = makeWebp("VP8", 300, 200);
    webp[27]! |= 0xc0; // width scale bits
    webp[29]! |= 0x40; // height scale bits
    expect(readImageDimensions(webp, "webp")).toEqual({ width: 300, height: 200 });
  });

  it("reads lossless VP8L (14-bit packed width-1/height-1 after 0x2f)", () => {
    expect(readImageDimensions(makeWebp("VP8L", 300, 200), "webp")).toEqual({ width: 300, height: 200 });
    expect(readImageDimensions(makeWebp("VP8L", 16384, 16384), "webp")).toEqual({ width: 16384, height: 16384 });
    expect(readImageDimensions(makeWebp("VP8L", 1, 1), "webp")).toEqual({ width: 1, height: 1 });
  });

  it("reads extended VP8X (24-bit canvas width-1/height-1)", () => {
    expect(readImageDimensions(makeWebp("VP8X", 300, 200), "webp")).toEqual({ width: 300, height: 200 });
    expect(readImageDimensions(makeWebp("VP8X", 20000, 70000), "webp")).toEqual({ width: 20000, height: 70000 });
  });

  it("returns null for truncated headers, a bad start code, a bad signature, or an unknown chunk", () => {
    for (const kind of ["VP8", "VP8L", "VP8X"] as const) {
      const webp = makeWebp(kind, 300, 200);
      const need = kind === "VP8L" ? 25 : 30;
      for (let n = 0; n < need; n++) expect(readImageDimensions(webp.subarray(0, n), "webp")).toBeNull();
      expect(readImageDimensions(webp.subarray(0, need), "webp")).toEqual({ width: 300, height: 200 });
    }
    const badStart = makeWebp("VP8", 300, 200);
    badStart[23] = 0x00;
    expect(readImageDimensions(badStart, "webp")).toBeNull();
    const badSig = makeWebp("VP8L", 300, 200);
    badSig[20] = 0x2e;
    expect(readImageDimensions(badSig, "webp")).toBeNull();
    const unknown = makeWebp("VP8", 300, 200);
    unknown.set(text("ALPH"), 12);
    expect(readImageDimensions(unknown, "webp")).toBeNull();
  });
});

describe("validateImageUpload", () => {
  it("accepts a real 200x200 PNG and hashes it with SHA-256", async () => {
    const png = await makePng(200, 200, { seed: "accept" });
    const result = await validateImageUpload({ bytes: png, declaredType: "image/png", filename: "leaf.png" }, UPLOAD_RULES);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const expected = hex(await crypto.subtle.digest("SHA-256", png));
    expect(result.image).toEqual({
      bytes: png,
      type: "png",
      mime: "image/png",
      extension: "png",
      width: 200,
      height: 200,
      sizeBytes: png.byteLength,
      sha256: expected,
    });
    expect(result.image.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await sha256Hex(png)).toBe(expected);
  });

  it("accepts JPEG and every WebP variant with matching or generic declared types", async () => {
    const cases: [Uint8Array, string | null | undefined, string | null, string][] = [
      [makeJpeg(400, 300), "image/jpeg", "photo.JPG", "jpeg"],
      [makeJpeg(400, 300), "image/jpg", "photo.jpeg", "jpeg"],
      [makeJpeg(400, 300), "IMAGE/JPEG; charset=binary", "photo.jpe", "jpeg"],
      [makeJpeg(400, 300), "application/octet-stream", "blob", "jpeg"],
      [makeJpeg(400, 300), "", "", "jpeg"],
      [makeJpeg(400, 300), null, null, "jpeg"],
      [makeWebp("VP8", 400, 300), "image/webp", "a.webp", "webp"],
      [makeWebp("VP8L", 400, 300), undefined, "a.webp", "webp"],
      [makeWebp("VP8X", 400, 300), "image/webp", "C:\\Users\\me\\a.webp", "webp"],
    ];
    for (const [bytes, declaredType, filename, type] of cases) {
      const result = await validateImageUpload({ bytes, declaredType, filename }, UPLOAD_RULES);
      expect(result, `${type} ${declaredType} ${filename}`).toMatchObject({ ok: true, image: { type, width: 400, height: 300 } });
    }
    const jpeg = await validateImageUpload({ bytes: makeJpeg(400, 300) }, UPLOAD_RULES);
    expect(jpeg).toMatchObject({ ok: true, image: { mime: "image/jpeg", extension: "jpg" } });
    const webp = await validateImageUpload({ bytes: makeWebp("VP8L", 400, 300) }, UPLOAD_RULES);
    expect(webp).toMatchObject({ ok: true, image: { mime: "image/webp", extension: "webp" } });
  });

  it("rejects a 0-byte file", async () => {
    await expectRejected(
      { bytes: new Uint8Array(), declaredType: "image/jpeg", filename: "a.jpg" },
      "EMPTY_FILE",
      "The uploaded file is empty.",
    );
  });

  it("rejects a file over the size limit before looking at its content", async () => {
    const big = new Uint8Array(Math.round(12.3 * MIB));
    await expectRejected({ bytes: big, declaredType: "image/jpeg" }, "FILE_TOO_LARGE", "File too large: 12.3MB. Maximum size: 10MB");
    const padded = padToSize(await makePng(200, 200), 10 * MIB + 1);
    expect(padded.length).toBe(10 * MIB + 1);
    await expectRejected({ bytes: padded }, "FILE_TOO_LARGE", "File too large: 10.0MB. Maximum size: 10MB");
    const exact = await validateImageUpload({ bytes: padToSize(await makePng(200, 200), 10 * MIB) }, UPLOAD_RULES);
    expect(exact.ok).toBe(true);
  });

  it("rejects unknown content naming the declared type, or 'unknown'", async () => {
    await expectRejected(
      { bytes: text("hello"), declaredType: "text/plain", filename: "a.txt" },
      "INVALID_FILE_TYPE",
      "Invalid file type: text/plain. Allowed types: JPEG, PNG, WebP",
    );
    await expectRejected(
      { bytes: text("GIF89a\x01\x00\x01\x00"), declaredType: null },
      "INVALID_FILE_TYPE",
      "Invalid file type: unknown. Allowed types: JPEG, PNG, WebP",
    );
    await expectRejected(
      { bytes: text("<svg/>"), declaredType: "" },
      "INVALID_FILE_TYPE",
      "Invalid file type: unknown. Allowed types: JPEG, PNG, WebP",
    );
  });

  it("rejects spoofed types: text named .jpg and declared image/jpeg", async () => {
    await expectRejected(
      { bytes: text("just some text, honestly"), declaredType: "image/jpeg", filename: "plant.jpg" },
      "INVALID_FILE_TYPE",
      "Invalid file type: the content is not a JPEG, PNG or WebP image (it was sent as image/jpeg). Allowed types: JPEG, PNG, WebP",
    );
  });

  it("rejects content that contradicts its declared type", async () => {
    const png = await makePng(200, 200);
    await expectRejected(
      { bytes: png, declaredType: "image/jpeg", filename: "leaf.png" },
      "FILE_TYPE_MISMATCH",
      "File content (PNG) does not match its declared type (image/jpeg)",
    );
    await expectRejected(
      { bytes: makeJpeg(300, 300), declaredType: "image/webp" },
      "FILE_TYPE_MISMATCH",
      "File content (JPEG) does not match its declared type (image/webp)",
    );
    await expectRejected(
      { bytes: makeWebp("VP8", 300, 300), declaredType: "text/html" },
      "FILE_TYPE_MISMATCH",
      "File content (WebP) does not match its declared type (text/html)",
    );
  });

  it("rejects content that contradicts its extension, including non-image extensions", async () => {
    const png = await makePng(200, 200);
    await expectRejected(
      { bytes: png, declaredType: "image/png", filename: "leaf.jpg" },
      "FILE_TYPE_MISMATCH",
      "File content (PNG) does not match its extension (.jpg)",
    );
    for (const ext of ["txt", "exe", "html", "svg", "gif"]) {
      await expectRejected(
        { bytes: makeJpeg(300, 300), declaredType: "image/jpeg", filename: `x.${ext}` },
        "FILE_TYPE_MISMATCH",
        `File content (JPEG) does not match its extension (.${ext})`,
      );
    }
    await expectRejected(
      { bytes: makeWebp("VP8X", 300, 300), filename: "x.PNG" },
      "FILE_TYPE_MISMATCH",
      "File content (WebP) does not match its extension (.png)",
    );
  });

  it("rejects images whose dimensions cannot be read", async () => {
    const truncated = makeJpeg(300, 300).subarray(0, 30);
    await expectRejected(
      { bytes: truncated, declaredType: "image/jpeg" },
      "INVALID_IMAGE",
      "Could not read the image dimensions. The file may be corrupted.",
    );
    await expectRejected(
      { bytes: (await makePng(300, 300)).subarray(0, 20) },
      "INVALID_IMAGE",
      "Could not read the image dimensions. The file may be corrupted.",
    );
    await expectRejected(
      { bytes: text("RIFF\x10\0\0\0WEBPVP8 ") },
      "INVALID_IMAGE",
      "Could not read the image dimensions. The file may be corrupted.",
    );
  });

  it("rejects images with a side below the minimum", async () => {
    await expectRejected({ bytes: await makePng(120, 90) }, "IMAGE_TOO_SMALL", "Image too small: 120x90px. Minimum: 200px per side");
    await expectRejected({ bytes: makeJpeg(1000, 199) }, "IMAGE_TOO_SMALL", "Image too small: 1000x199px. Minimum: 200px per side");
  });

  it("rejects images with a side above the maximum", async () => {
    await expectRejected(
      { bytes: makePngHeaderOnly(9000, 300) },
      "IMAGE_TOO_LARGE",
      "Image too large: 9000x300px. Maximum: 8000px per side",
    );
    await expectRejected(
      { bytes: makeWebp("VP8X", 2000, 8001) },
      "IMAGE_TOO_LARGE",
      "Image too large: 2000x8001px. Maximum: 8000px per side",
    );
    const ok = await validateImageUpload({ bytes: makePngHeaderOnly(8000, 4000) }, UPLOAD_RULES);
    expect(ok).toMatchObject({ ok: true, image: { width: 8000, height: 4000 } });
  });

  it("rejects images with too many pixels", async () => {
    await expectRejected(
      { bytes: makePngHeaderOnly(7500, 6000) },
      "IMAGE_TOO_LARGE",
      "Image has too many pixels: 45.0 megapixels. Maximum: 40 megapixels",
    );
    await expectRejected(
      { bytes: makeWebp("VP8L", 8000, 5001) },
      "IMAGE_TOO_LARGE",
      "Image has too many pixels: 40.0 megapixels. Maximum: 40 megapixels",
    );
  });

  it("rejects extreme aspect ratios", async () => {
    await expectRejected({ bytes: makeJpeg(2500, 200) }, "INVALID_ASPECT_RATIO", "Image aspect ratio too extreme: 12.5:1. Maximum: 10:1");
    await expectRejected(
      { bytes: makeWebp("VP8", 200, 2500) },
      "INVALID_ASPECT_RATIO",
      "Image aspect ratio too extreme: 12.5:1. Maximum: 10:1",
    );
    const exactlyTen = await validateImageUpload({ bytes: makePngHeaderOnly(2000, 200) }, UPLOAD_RULES);
    expect(exactlyTen.ok).toBe(true);
  });

  it("checks in order: size before type, type before dimensions, size limits before aspect", async () => {
    // Too large and not an image → size wins.
    await expectRejected(
      { bytes: new Uint8Array(11 * MIB), declaredType: "text/plain" },
      "FILE_TOO_LARGE",
      "File too large: 11.0MB. Maximum size: 10MB",
    );
    // Mismatched and truncated → mismatch wins.
    await expectRejected(
      { bytes: (await makePng(300, 300)).subarray(0, 10), declaredType: "image/jpeg" },
      "FILE_TYPE_MISMATCH",
      "File content (PNG) does not match its declared type (image/jpeg)",
    );
    // Declared type is checked before the extension.
    await expectRejected(
      { bytes: makeJpeg(300, 300), declaredType: "image/png", filename: "x.txt" },
      "FILE_TYPE_MISMATCH",
      "File content (JPEG) does not match its declared type (image/png)",
    );
    // Too small and extreme aspect → too small wins.
    await expectRejected({ bytes: makeJpeg(5000, 100) }, "IMAGE_TOO_SMALL", "Image too small: 5000x100px. Minimum: 200px per side");
  });

  describe("avatar rules", () => {
    it("accept a 50x50 image that uploads reject", async () => {
      const png = await makePng(50, 50);
      expect(await validateImageUpload({ bytes: png, filename: "me.png" }, AVATAR_RULES)).toMatchObject({
        ok: true,
        image: { width: 50, height: 50, type: "png" },
      });
      await expectRejected({ bytes: png }, "IMAGE_TOO_SMALL", "Image too small: 50x50px. Minimum: 200px per side");
    });

    it("reject sides under 50px", async () => {
      await expectRejected(
        { bytes: makeJpeg(49, 60) },
        "IMAGE_TOO_SMALL",
        "Image too small: 49x60px. Minimum: 50px per side",
        AVATAR_RULES,
      );
    });

    it("reject files over 2 MiB", async () => {
      const jpeg = padToSize(makeJpeg(100, 100), Math.round(2.5 * MIB));
      expect(jpeg.length).toBe(Math.round(2.5 * MIB));
      await expectRejected(
        { bytes: jpeg, declaredType: "image/jpeg" },
        "FILE_TOO_LARGE",
        "File too large: 2.5MB. Maximum size: 2MB",
        AVATAR_RULES,
      );
      const exact = await validateImageUpload({ bytes: padToSize(makeJpeg(100, 100), 2 * MIB) }, AVATAR_RULES);
      expect(exact).toMatchObject({ ok: true, image: { sizeBytes: 2 * MIB, width: 100, height: 100 } });
    });

    it("have the documented limits", () => {
      expect(UPLOAD_RULES).toEqual({ maxBytes: 10 * MIB, minSide: 200, maxSide: 8000, maxPixels: 40_000_000, maxAspectRatio: 10 });
      expect(AVATAR_RULES).toEqual({ maxBytes: 2 * MIB, minSide: 50, maxSide: 8000, maxPixels: 40_000_000, maxAspectRatio: 10 });
    });
  });
});

describe("image structure: truncated or corrupted files are refused (item 11)", () => {
  const u32 = (n: number) => new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  const le32 = (n: number) => new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
  const corrupted = (problem: string) => `The image file is incomplete or corrupted: ${problem}. Please upload the whole file again.`;
  /** The byte offset just after the IHDR chunk (signature 8 + chunk 25): from here on dimensions read. */
  const AFTER_IHDR = 33;

  it("accepts every generated image whole: PNG, header-only PNG, padded PNG and JPEG, each WebP kind", async () => {
    const whole = [
      ["png", await makePng(200, 200, { seed: 1, text: "t" })],
      ["png", makePngHeaderOnly(9000, 300)],
      ["png", padToSize(await makePng(200, 200), 100_000)],
      ["jpeg", makeJpeg(400, 300, { comment: "c" })],
      ["jpeg", padToSize(makeJpeg(400, 300), 70_000)],
      ["webp", makeWebp("VP8", 400, 300)],
      ["webp", makeWebp("VP8L", 400, 300)],
      ["webp", makeWebp("VP8X", 400, 300)],
    ] as const;
    for (const [type, bytes] of whole) expect(imageStructureProblem(bytes, type), `${type} ${bytes.length}`).toBeNull();
  });

  describe("PNG", () => {
    it("refuses every truncation that still has a readable IHDR", async () => {
      const png = await makePng(40, 30, { seed: "cut" });
      for (let n = 24; n < png.length; n++) expect(imageStructureProblem(png.subarray(0, n), "png"), `cut at ${n}`).not.toBeNull();
      expect(imageStructureProblem(png, "png")).toBeNull();
    });

    it("names the problem: a chunk past the end, no IEND, a bad IEND, no IDAT, a bad chunk type or length", async () => {
      const png = await makePng(40, 30);
      const iend = png.length - 12;
      expect(imageStructureProblem(png.subarray(0, iend - 5), "png")).toBe("a PNG chunk runs past the end of the file");
      expect(imageStructureProblem(png.subarray(0, iend), "png")).toBe("the PNG ends before its IEND chunk");
      expect(imageStructureProblem(png.subarray(0, png.length - 1), "png")).toBe("the PNG ends before its IEND chunk");

      const badCrc = png.slice();
      badCrc[png.length - 1]! ^= 0x01;
      expect(imageStructureProblem(badCrc, "png")).toBe("the PNG's IEND chunk is corrupted");
      const iendWithData = concatBytes(png.subarray(0, iend), pngChunk("IEND", new Uint8Array([1])));
      expect(imageStructureProblem(iendWithData, "png")).toBe("the PNG's IEND chunk is corrupted");

      const noIdat = concatBytes(png.subarray(0, AFTER_IHDR), pngChunk("IEND", new Uint8Array(0)));
      expect(imageStructureProblem(noIdat, "png")).toBe("the PNG has no image data (IDAT)");

      const badType = png.slice();
      badType.set(text("ID@T"), AFTER_IHDR + 4);
      expect(imageStructureProblem(badType, "png")).toBe("a PNG chunk has an invalid type");
      const hugeLength = png.slice();
      hugeLength.set(u32(0x80000000), AFTER_IHDR);
      expect(imageStructureProblem(hugeLength, "png")).toBe("a PNG chunk has an invalid length");
      // A length that skips over the real IEND into nothing.
      const longLength = png.slice();
      longLength.set(u32(png.length), AFTER_IHDR);
      expect(imageStructureProblem(longLength, "png")).toBe("a PNG chunk runs past the end of the file");
    });

    it("ignores bytes after a valid IEND, as decoders do", async () => {
      const png = await makePng(40, 30);
      expect(imageStructureProblem(concatBytes(png, text("trailing bytes")), "png")).toBeNull();
    });

    it("refuses a truncated 200x200 PNG through validateImageUpload with INVALID_IMAGE", async () => {
      const png = await makePng(200, 200, { seed: "upload" });
      await expectRejected(
        { bytes: png.subarray(0, png.length - 100), declaredType: "image/png", filename: "cut.png" },
        "INVALID_IMAGE",
        corrupted("a PNG chunk runs past the end of the file"),
      );
      await expectRejected({ bytes: png.subarray(0, png.length - 4) }, "INVALID_IMAGE", corrupted("the PNG ends before its IEND chunk"));
    });
  });

  describe("JPEG", () => {
    const SOI = new Uint8Array([0xff, 0xd8]);
    const EOI = new Uint8Array([0xff, 0xd9]);

    it("refuses every truncation after the frame header", () => {
      const jpeg = makeJpeg(300, 200, { comment: "cut" });
      const sofAt = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
      for (let n = sofAt + 9; n < jpeg.length; n++)
        expect(imageStructureProblem(jpeg.subarray(0, n), "jpeg"), `cut at ${n}`).not.toBeNull();
    });

    it("names the problem: no scan, EOI before the scan, a segment past the end, no EOI after the scan", () => {
      const jpeg = makeJpeg(300, 200);
      const sosAt = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xda);
      const headers = jpeg.subarray(0, sosAt);
      expect(imageStructureProblem(headers, "jpeg")).toBe("the JPEG ends before its image data (no start of scan)");
      expect(imageStructureProblem(concatBytes(headers, EOI), "jpeg")).toBe("the JPEG ends before its image data (EOI before any scan)");
      expect(imageStructureProblem(jpeg.subarray(0, sosAt + 6), "jpeg")).toBe("a JPEG segment runs past the end of the file");
      expect(imageStructureProblem(jpeg.subarray(0, jpeg.length - 2), "jpeg")).toBe("the JPEG ends before its end-of-image marker (EOI)");
      expect(imageStructureProblem(jpeg.subarray(0, jpeg.length - 1), "jpeg")).toBe("the JPEG ends before its end-of-image marker (EOI)");
      expect(imageStructureProblem(concatBytes(SOI, new Uint8Array([0xff, 0xe0, 0x00, 0x01])), "jpeg")).toBe(
        "a JPEG segment has an invalid length",
      );
    });

    it("does not count an EOI that sits before the scan (an EXIF thumbnail's)", () => {
      const jpeg = makeJpeg(300, 200);
      const thumbnail = jpegSegment(0xe1, concatBytes(text("Exif\0\0"), makeJpeg(16, 16)));
      const withThumbnail = concatBytes(SOI, thumbnail, jpeg.subarray(2));
      expect(imageStructureProblem(withThumbnail, "jpeg")).toBeNull();
      expect(imageStructureProblem(withThumbnail.subarray(0, withThumbnail.length - 2), "jpeg")).toBe(
        "the JPEG ends before its end-of-image marker (EOI)",
      );
    });

    it("accepts bytes after the EOI (camera trailers) and restart markers in the scan", () => {
      const jpeg = makeJpeg(300, 200);
      expect(imageStructureProblem(concatBytes(jpeg, text("SEFT trailer"), new Uint8Array(100)), "jpeg")).toBeNull();
      const withRst = concatBytes(jpeg.subarray(0, jpeg.length - 2), new Uint8Array([0xff, 0xd0, 0x12, 0xff, 0x00]), EOI);
      expect(imageStructureProblem(withRst, "jpeg")).toBeNull();
      expect(imageStructureProblem(withRst.subarray(0, withRst.length - 2), "jpeg")).not.toBeNull();
    });

    it("refuses a truncated 400x300 JPEG through validateImageUpload with INVALID_IMAGE", async () => {
      const jpeg = makeJpeg(400, 300);
      await expectRejected(
        { bytes: jpeg.subarray(0, jpeg.length - 3), declaredType: "image/jpeg", filename: "cut.jpg" },
        "INVALID_IMAGE",
        corrupted("the JPEG ends before its end-of-image marker (EOI)"),
      );
    });
  });

  describe("WebP", () => {
    it("refuses every truncation, and any byte beyond the RIFF size", () => {
      for (const kind of ["VP8", "VP8L", "VP8X"] as const) {
        const webp = makeWebp(kind, 300, 200);
        const need = kind === "VP8L" ? 25 : 30; // where the dimensions become readable
        for (let n = need; n < webp.length; n++) {
          expect(imageStructureProblem(webp.subarray(0, n), "webp"), `${kind} cut at ${n}`).toBe(
            "the WebP file is shorter than its RIFF header says",
          );
        }
        expect(imageStructureProblem(concatBytes(webp, new Uint8Array(2)), "webp")).toBe(
          "the WebP file is longer than its RIFF header says",
        );
      }
    });

    it("allows the RIFF pad byte after an odd size, and an unpadded last chunk", () => {
      const webp = makeWebp("VP8L", 300, 200); // VP8L payload of 13 bytes + 1 pad byte
      const unpadded = webp.slice(0, webp.length - 1);
      unpadded.set(le32(unpadded.length - 8), 4);
      expect(imageStructureProblem(unpadded, "webp")).toBeNull();
      expect(imageStructureProblem(concatBytes(unpadded, new Uint8Array(1)), "webp")).toBeNull();
      expect(imageStructureProblem(concatBytes(unpadded, new Uint8Array(2)), "webp")).toBe(
        "the WebP file is longer than its RIFF header says",
      );
    });

    it("refuses a chunk that runs past the RIFF payload even when the RIFF size matches the file", () => {
      const webp = makeWebp("VP8X", 300, 200);
      const overlong = webp.slice();
      overlong.set(le32(1000), 30 + 4); // the VP8 chunk after the 18-byte VP8X chunk at 12
      expect(imageStructureProblem(overlong, "webp")).toBe("a WebP chunk runs past the end of the file");
      const dangling = concatBytes(webp, text("ALP"));
      dangling.set(le32(dangling.length - 8), 4);
      expect(imageStructureProblem(dangling, "webp")).toBe("a WebP chunk header runs past the end of the file");
    });

    it("refuses a truncated 400x300 WebP through validateImageUpload with INVALID_IMAGE", async () => {
      const webp = makeWebp("VP8", 400, 300);
      await expectRejected(
        { bytes: webp.subarray(0, webp.length - 8), declaredType: "image/webp", filename: "cut.webp" },
        "INVALID_IMAGE",
        corrupted("the WebP file is shorter than its RIFF header says"),
      );
    });
  });

  it("checks structure before the dimension limits: a cut-off file is reported as such", async () => {
    const small = await makePng(120, 90);
    await expectRejected({ bytes: small.subarray(0, small.length - 12) }, "INVALID_IMAGE", corrupted("the PNG ends before its IEND chunk"));
  });

  it("never throws and always terminates on adversarial bytes", () => {
    const ffRun = concatBytes(makeJpeg(300, 200).subarray(0, -2), new Uint8Array(1 << 20).fill(0xff));
    expect(imageStructureProblem(ffRun, "jpeg")).toBe("the JPEG ends before its end-of-image marker (EOI)");
    const zeroChunks = concatBytes(makePngHeaderOnly(300, 200).subarray(0, AFTER_IHDR), new Uint8Array(1 << 20));
    // Zero bytes are no chunk type: the walk stops at the first one.
    expect(imageStructureProblem(zeroChunks, "png")).toBe("a PNG chunk has an invalid type");
    const emptyChunks: Uint8Array[] = [makePngHeaderOnly(300, 200).subarray(0, AFTER_IHDR)];
    for (let i = 0; i < 50_000; i++) emptyChunks.push(pngChunk("zzZz", new Uint8Array(0)));
    expect(imageStructureProblem(concatBytes(...emptyChunks), "png")).toBe("the PNG ends before its IEND chunk");
    const tinyWebpChunks = concatBytes(
      makeWebp("VP8", 300, 200),
      ...Array.from({ length: 10_000 }, () => concatBytes(text("JUNK"), le32(0))),
    );
    tinyWebpChunks.set(le32(tinyWebpChunks.length - 8), 4);
    expect(imageStructureProblem(tinyWebpChunks, "webp")).toBeNull();
  });
});

describe("bytesToBase64", () => {
  it("matches btoa on small inputs", () => {
    expect(bytesToBase64(new Uint8Array())).toBe("");
    expect(bytesToBase64(text("hello"))).toBe(btoa("hello"));
    const all = new Uint8Array(256).map((_, i) => i);
    expect(bytesToBase64(all)).toBe(btoa(String.fromCharCode(...all)));
  });

  it("encodes multi-chunk (1 MB) inputs without overflowing the stack and round-trips", async () => {
    const png = padToSize(await makePng(200, 200), 1_000_000);
    const b64 = bytesToBase64(png);
    expect(b64.length).toBe(Math.ceil(png.length / 3) * 4);
    const binary = atob(b64);
    const back = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) back[i] = binary.charCodeAt(i);
    expect(back.length).toBe(png.length);
    expect(await sha256Hex(back)).toBe(await sha256Hex(png)); // a 1 MB toEqual is slow
  });

  it("the portable encoder (for runtimes without Uint8Array.prototype.toBase64) says the same, also for views", async () => {
    const png = padToSize(await makePng(120, 80), 300_001);
    expect(portableBytesToBase64(png)).toBe(bytesToBase64(png));
    const view = png.subarray(7, 70_007);
    expect(portableBytesToBase64(view)).toBe(bytesToBase64(view));
    expect(bytesToBase64(view).length).toBe(Math.ceil(70_000 / 3) * 4);
  });
});

describe("test image helpers", () => {
  it("makePng writes valid chunk CRCs, text chunks and distinct bytes per seed", async () => {
    const png = await makePng(10, 10, { seed: 7, text: "NOTAPLANT" });
    let at = 8;
    const types: string[] = [];
    while (at < png.length) {
      const view = new DataView(png.buffer, png.byteOffset + at);
      const length = view.getUint32(0);
      const type = png.subarray(at + 4, at + 8);
      const data = png.subarray(at + 8, at + 8 + length);
      expect(view.getUint32(8 + length)).toBe(crc32(type, data));
      types.push(String.fromCharCode(...type));
      at += 12 + length;
    }
    expect(types).toEqual(["IHDR", "tEXt", "tEXt", "IDAT", "IEND"]);
    expect(new TextDecoder().decode(png)).toContain("NOTAPLANT");
    const a = await makePng(10, 10, { seed: 1 });
    const b = await makePng(10, 10, { seed: 2 });
    expect(await sha256Hex(a)).not.toBe(await sha256Hex(b));
  });

  it("makePng's IDAT inflates to height rows of filter byte + RGB", async () => {
    const png = await makePng(13, 5);
    const idatAt = 8 + 25; // after signature and IHDR
    const length = new DataView(png.buffer, png.byteOffset + idatAt).getUint32(0);
    const raw = new Uint8Array(
      await new Response(
        new Blob([png.slice(idatAt + 8, idatAt + 8 + length)]).stream().pipeThrough(new DecompressionStream("deflate")),
      ).arrayBuffer(),
    );
    expect(raw.length).toBe(5 * (1 + 13 * 3));
    for (let y = 0; y < 5; y++) expect(raw[y * (1 + 13 * 3)]).toBe(0);
  });

  it("padToSize keeps PNGs and JPEGs readable at exactly the target size", async () => {
    const png = padToSize(await makePng(200, 200), 1_048_576);
    expect(png.length).toBe(1_048_576);
    expect(readImageDimensions(png, "png")).toEqual({ width: 200, height: 200 });
    expect(String.fromCharCode(...png.subarray(png.length - 8, png.length - 4))).toBe("IEND");
    for (const extra of [4, 5, 7, 65537, 65538, 65540, 65541, 200_000]) {
      const base = makeJpeg(64, 64, { comment: "c" });
      const jpeg = padToSize(base, base.length + extra);
      expect(jpeg.length).toBe(base.length + extra);
      expect(readImageDimensions(jpeg, "jpeg")).toEqual({ width: 64, height: 64 });
    }
    const chunk = pngChunk("zzPd", new Uint8Array(3));
    expect(chunk.length).toBe(15);
  });

  it("makeJpeg is structurally consistent: segments chain from SOI through SOS, data ends with EOI", () => {
    const jpeg = makeJpeg(33, 17, { comment: "distinct" });
    const markers: number[] = [];
    let at = 2;
    while (true) {
      expect(jpeg[at]).toBe(0xff);
      const marker = jpeg[at + 1]!;
      markers.push(marker);
      const length = (jpeg[at + 2]! << 8) | jpeg[at + 3]!;
      at += 2 + length;
      if (marker === 0xda) break;
    }
    expect(markers).toEqual([0xe0, 0xfe, 0xdb, 0xc0, 0xc4, 0xda]);
    // 5 x 3 blocks, 6 bits each → 90 bits → 12 bytes, then EOI.
    expect(jpeg.length - at).toBe(12 + 2);
    expect([...jpeg.subarray(-2)]).toEqual([0xff, 0xd9]);
    expect(makeJpeg(33, 17, { comment: "a" })).not.toEqual(makeJpeg(33, 17, { comment: "b" }));
  });
});
