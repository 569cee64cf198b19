#!/usr/bin/python3
"""Regenerates the test data of tests/test_image.c (the files beside this script).

Needs numpy, Pillow and (for the preprocessing ground truth) the independent reference
implementation, imported -- not copied -- from shared/reference:

    /usr/bin/python3 tests/data/image/make_expected.py [/path/to/shared/reference]

Files written:
  pre_*.png + expected      preprocessing cases: input image, and the exact output of the
                            reference (Processor.preprocess = VLMImageProcessor): as the uint8
                            [S,S,3] canvas before rescale/normalise (pre_*_u8.png), after checking
                            that the reference's float output is exactly the per-value map of it
                            (nothing is lost), or as float32 [3,S,S] (.npy) for the case that
                            checks that map itself
  pre_cases.json            the case list
  png_*.png + png_*.rgba    PNG variants from a small PNG encoder below (bit depths, palette, tRNS,
                            interlacing) with the 8-bit RGBA the decoder must produce
  fmt_*.{jpg,gif,bmp,tif}   other formats written by Pillow, with fmt_*.rgba = Pillow's own decode
  bad_*                     hostile / broken files
  text_*.png                PNGs with tEXt / zTXt / iTXt chunks in various places
.rgba files: width, height as little-endian u32, then the RGBA bytes.
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REF = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/reference"
TINY = os.path.join(HERE, "..", "tiny", "janusflow")


def out(name):
    return os.path.join(HERE, name)


# ------------------------------------------------------------------------------------------
# A minimal PNG encoder, so that every colour type / depth / interlace combination can be made.

def chunk(ctype, data):
    c = ctype.encode("latin-1") if isinstance(ctype, str) else ctype
    return struct.pack(">I", len(data)) + c + data + struct.pack(">I", zlib.crc32(c + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def pack_row(samples, depth):
    """samples: 1-D int array of the row's samples (channels interleaved)."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // depth
    n = len(samples)
    padded = np.zeros(((n + per - 1) // per) * per, dtype=np.int64)
    padded[:n] = samples
    padded = padded.reshape(-1, per)
    byte = np.zeros(len(padded), dtype=np.int64)
    for i in range(per):
        byte |= padded[:, i] << (8 - depth * (i + 1))
    return byte.astype(np.uint8).tobytes()


def encode_png(pix, color_type, depth, interlace=False, plte=None, trns=None, pre=(), post=()):
    """pix: [H, W, C] integer samples (C by colour type; palette indices for type 3)."""
    h, w = pix.shape[:2]
    flat = pix.reshape(h, w, -1)

    def scan(img):
        raw = b""
        for row in img:
            raw += b"\x00" + pack_row(row.reshape(-1), depth)
        return raw

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = flat[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += scan(sub)
    else:
        raw = scan(flat)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk("IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    for c in pre:
        data += c
    if plte is not None:
        data += chunk("PLTE", bytes(np.asarray(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk("tRNS", trns)
    z = zlib.compress(raw, 9)
    data += chunk("IDAT", z[: len(z) // 2]) + chunk("IDAT", z[len(z) // 2:])
    for c in post:
        data += c
    data += chunk("IEND", b"")
    return data


def write(name, data):
    with open(out(name), "wb") as f:
        f.write(data)


def write_rgba(name, rgba):
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    with open(out(name), "wb") as f:
        f.write(struct.pack("<II", rgba.shape[1], rgba.shape[0]) + rgba.tobytes())


def scale_to_8(v, depth):
    if depth == 16:
        return v >> 8          # libpng strip_16 and Pillow both keep the high byte
    return (v * 255) // ((1 << depth) - 1)


def make_png_variants(rng):
    h, w = 7, 13
    cases = []
    # gray 1/2/4/8/16
    for depth in (1, 2, 4, 8, 16):
        v = rng.integers(0, 1 << depth, size=(h, w))
        g8 = scale_to_8(v, depth)
        rgba = np.stack([g8, g8, g8, np.full_like(g8, 255)], -1)
        cases.append((f"gray{depth}", encode_png(v, 0, depth), rgba))
    # gray + tRNS (8-bit): the transparent value gets alpha 0
    v = rng.integers(0, 4, size=(h, w)) * 60
    rgba = np.stack([v, v, v, np.where(v == 120, 0, 255)], -1)
    cases.append(("gray8_trns", encode_png(v, 0, 8, trns=struct.pack(">H", 120)), rgba))
    # gray+alpha 8 / 16
    for depth in (8, 16):
        v = rng.integers(0, 1 << depth, size=(h, w, 2))
        g, a = scale_to_8(v[..., 0], depth), scale_to_8(v[..., 1], depth)
        cases.append((f"graya{depth}", encode_png(v, 4, depth), np.stack([g, g, g, a], -1)))
    # RGB 8 / 16, RGBA 8 / 16
    for depth in (8, 16):
        v = rng.integers(0, 1 << depth, size=(h, w, 3))
        e = scale_to_8(v, depth)
        cases.append((f"rgb{depth}", encode_png(v, 2, depth), np.concatenate([e, np.full((h, w, 1), 255)], -1)))
        v = rng.integers(0, 1 << depth, size=(h, w, 4))
        cases.append((f"rgba{depth}", encode_png(v, 6, depth), scale_to_8(v, depth)))
    # palette 1/2/4/8 with and without tRNS
    for depth in (1, 2, 4, 8):
        n = 1 << depth
        plte = rng.integers(0, 256, size=(n, 3))
        idx = rng.integers(0, n, size=(h, w))
        rgba = np.concatenate([plte[idx], np.full((h, w, 1), 255)], -1)
        cases.append((f"pal{depth}", encode_png(idx, 3, depth, plte=plte), rgba))
    plte = rng.integers(0, 256, size=(16, 3))
    alpha = np.array([0, 128, 255, 7], dtype=np.uint8)   # shorter than the palette: rest opaque
    idx = rng.integers(0, 16, size=(h, w))
    a = np.where(idx < 4, alpha[np.minimum(idx, 3)], 255)
    cases.append(("pal4_trns", encode_png(idx, 3, 4, plte=plte, trns=alpha.tobytes()),
                  np.concatenate([plte[idx], a[..., None]], -1)))
    # interlaced: RGBA 8, RGB 16, palette 2, gray 1 (sizes that leave some Adam7 passes empty too)
    v = rng.integers(0, 256, size=(h, w, 4))
    cases.append(("rgba8_interlaced", encode_png(v, 6, 8, interlace=True), v))
    v = rng.integers(0, 65536, size=(5, 3, 3))
    cases.append(("rgb16_interlaced", encode_png(v, 2, 16, interlace=True),
                  np.concatenate([v >> 8, np.full((5, 3, 1), 255)], -1)))
    plte = rng.integers(0, 256, size=(4, 3))
    idx = rng.integers(0, 4, size=(h, w))
    cases.append(("pal2_interlaced", encode_png(idx, 3, 2, interlace=True, plte=plte),
                  np.concatenate([plte[idx], np.full((h, w, 1), 255)], -1)))
    v = rng.integers(0, 2, size=(1, 1))
    g = v * 255
    cases.append(("gray1_1x1_interlaced", encode_png(v, 0, 1, interlace=True),
                  np.stack([g, g, g, np.full_like(g, 255)], -1)))
    names = []
    for name, data, rgba in cases:
        write(f"png_{name}.png", data)
        write_rgba(f"png_{name}.rgba", rgba)
        # cross-check the expectation with Pillow where Pillow agrees with the PNG rules
        # (it reads 16-bit gray as 32-bit integers and clips instead of keeping the high byte)
        if "gray16" not in name and "graya16" not in name:
            pil = np.asarray(Image.open(out(f"png_{name}.png")).convert("RGBA"))
            assert (pil == rgba).all(), name
        names.append(name)
    with open(out("png_cases.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


def make_other_formats(rng):
    h, w = 24, 40
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(xx * 6) % 256, (yy * 10) % 256, ((xx + yy) * 4) % 256], -1).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    img.save(out("fmt_bmp.bmp"))
    img.save(out("fmt_tiff.tif"))
    img.save(out("fmt_jpeg.jpg"), quality=90)
    # EXIF orientation 6: the stored pixels must be turned 90 degrees clockwise for display
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(out("fmt_jpeg_exif6.jpg"), quality=90, exif=exif.tobytes())
    # two-frame GIF: the first frame is wanted
    f1 = Image.fromarray(rgb, "RGB").quantize(colors=64, dither=Image.Dither.NONE)
    f2 = Image.fromarray(255 - rgb, "RGB").quantize(colors=64, dither=Image.Dither.NONE)
    f1.save(out("fmt_gif.gif"), save_all=True, append_images=[f2], duration=100, loop=0)
    for name, path in (("bmp", "fmt_bmp.bmp"), ("tiff", "fmt_tiff.tif"), ("jpeg", "fmt_jpeg.jpg"),
                       ("gif", "fmt_gif.gif")):
        im = Image.open(out(path))
        im.seek(0)
        write_rgba(f"fmt_{name}.rgba", np.asarray(im.convert("RGBA")))


def make_bad(rng):
    good = encode_png(rng.integers(0, 256, size=(16, 16, 3)), 2, 8)
    write("bad_truncated.png", good[: len(good) - 40])
    write("bad_zero_width.png", b"\x89PNG\r\n\x1a\n" + chunk("IHDR", struct.pack(">IIBBBBB", 0, 4, 8, 2, 0, 0, 0))
          + chunk("IDAT", zlib.compress(b"")) + chunk("IEND", b""))
    # 20000 x 20000 RGBA: a valid header and a token IDAT; must be refused before allocating
    write("bad_huge.png", b"\x89PNG\r\n\x1a\n" + chunk("IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 6, 0, 0, 0))
          + chunk("IDAT", zlib.compress(b"\x00" * 64)) + chunk("IEND", b""))
    # a corrupt IDAT (valid CRC, garbage zlib data)
    write("bad_zlib.png", b"\x89PNG\r\n\x1a\n" + chunk("IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
          + chunk("IDAT", bytes(rng.integers(0, 256, size=60, dtype=np.uint8))) + chunk("IEND", b""))
    # a BMP header claiming 16000 x 16000 (256 megapixels) with almost no data: gdk-pixbuf path
    w = h = 16000
    bmp = b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0,
                                                                         2835, 2835, 0, 0) + b"\x00" * 64
    write("bad_huge.bmp", bmp)
    # the same claim in JPEG (SOF0), GIF (screen and image descriptor) and TIFF (width/length tags)
    small = Image.fromarray(np.zeros((16, 16, 3), np.uint8))
    for fmt, ext in (("JPEG", "jpg"), ("GIF", "gif"), ("TIFF", "tif")):
        b = io.BytesIO()
        small.save(b, fmt)
        d = bytearray(b.getvalue())
        if fmt == "JPEG":
            i = d.find(b"\xff\xc0")
            struct.pack_into(">HH", d, i + 5, h, w)
        elif fmt == "GIF":
            struct.pack_into("<HH", d, 6, w, h)
            i = d.find(b"\x2c", 13)
            struct.pack_into("<HH", d, i + 5, w, h)
        else:
            off = struct.unpack_from("<I", d, 4)[0]
            for k in range(struct.unpack_from("<H", d, off)[0]):
                e = off + 2 + 12 * k
                tag, typ = struct.unpack_from("<HH", d, e)
                if tag in (256, 257):
                    struct.pack_into("<H" if typ == 3 else "<I", d, e + 8, w)
        write(f"bad_huge.{ext}", bytes(d))


def make_text(rng):
    pix = rng.integers(0, 256, size=(4, 5, 3))
    latin = "caf\u00e9 \u00bd".encode("latin-1")
    pre = [chunk("tEXt", b"Title\x00" + latin),
           chunk("zTXt", b"Comment\x00\x00" + zlib.compress("zipped text ".encode() * 50)),
           chunk("iTXt", b"prompt\x00\x01\x00ko\x00" + "프롬프트".encode("utf-8") + b"\x00"
                 + zlib.compress("고양이 그림, photo 35mm".encode("utf-8")))]
    post = [chunk("iTXt", b"after\x00\x00\x00\x00\x00" + "뒤에 있는 텍스트".encode("utf-8")),
            chunk("tEXt", b"utf8_in_text\x00" + "\u00e9t\u00e9 \u2603".encode("utf-8"))]
    write("text_mixed.png", encode_png(pix, 2, 8, pre=pre, post=post))
    # a zTXt that inflates to 24 MiB (over the per-chunk limit) beside a normal one: the bomb is
    # dropped, the other entry survives
    bomb = chunk("zTXt", b"bomb\x00\x00" + zlib.compress(b"A" * (24 << 20), 9))
    write("text_bomb.png", encode_png(pix, 2, 8, pre=[bomb, chunk("tEXt", b"ok\x00yes")]))
    # 1500 text chunks: over the chunk-count limit
    many = [chunk("tEXt", b"k%d\x00v" % i) for i in range(1500)]
    write("text_many.png", encode_png(pix, 2, 8, pre=many))
    # a text chunk with a bad CRC (ignored) and one whose length runs past the end of the file
    good = chunk("tEXt", b"good\x00value")
    badcrc = bytearray(chunk("tEXt", b"badcrc\x00value"))
    badcrc[-1] ^= 0xFF
    data = encode_png(pix, 2, 8, pre=[good, bytes(badcrc)])
    data = data[:-12] + struct.pack(">I", 1 << 30) + b"tEXt" + b"cut\x00"   # replaces IEND
    write("text_broken.png", data)


# ------------------------------------------------------------------------------------------
# Preprocessing ground truth from the reference processor.

def make_preprocess(rng):
    sys.path.insert(0, REF)
    import janusflow_ref as ref   # noqa: E402  (run, never copied)

    tok = ref.HFTokenizer.from_dir(TINY)
    cases = []

    def smooth_random(h, w, alpha):
        # blocky colours with sharp edges (overshoot -> clamping) plus gradients; compresses well
        yy, xx = np.mgrid[0:h, 0:w]
        blocks = rng.integers(0, 256, size=((h + 6) // 7, (w + 6) // 7, 3))[yy // 7, xx // 7]
        grad = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1)
        rgb = np.where(((xx // 7 + yy // 7) % 3 == 0)[..., None], grad, blocks).astype(np.uint8)
        # a few one-pixel lines of extremes
        rgb[:, ::17] = 255
        rgb[::13, :] = 0
        if not alpha:
            return Image.fromarray(rgb, "RGB")
        a = ((xx * 3 + yy * 5) % 256).astype(np.uint8)
        return Image.fromarray(np.concatenate([rgb, a[..., None]], -1), "RGBA")

    def run(name, img, size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), min_size=14, store="u8"):
        img.save(out(f"pre_{name}.png"))
        ip = {"image_size": size, "min_size": min_size, "image_mean": list(mean), "image_std": list(std),
              "rescale_factor": 0.00392156862745098, "do_normalize": True}
        proc = ref.Processor(tokenizer=tok, processor_config={}, preprocessor_config=ip)
        pv = proc.preprocess(Image.open(out(f"pre_{name}.png")))
        assert pv.dtype == np.float32 and pv.shape == (3, size, size)
        case = {"name": name, "input": f"pre_{name}.png", "image_size": size, "min_size": min_size,
                "mean": list(mean), "std": list(std), "background": [int(m * 255) for m in mean]}
        if store == "f32":
            np.save(out(f"pre_{name}.npy"), pv)
            case["expected_f32"] = f"pre_{name}.npy"
        else:
            # invert the per-value map exactly, and prove it is exact
            lut = np.stack([((np.arange(256, dtype=np.float64) * 0.00392156862745098).astype(np.float32)
                             - np.float32(m)) / np.float32(s) for m, s in zip(mean, std)])
            u8 = np.zeros((size, size, 3), dtype=np.uint8)
            for c in range(3):
                idx = np.clip(np.searchsorted(lut[c], pv[c]), 0, 255)
                assert (lut[c][idx] == pv[c]).all(), name
                u8[..., c] = idx
            Image.fromarray(u8, "RGB").save(out(f"pre_{name}_u8.png"), optimize=True)
            case["expected_u8"] = f"pre_{name}_u8.png"
        cases.append(case)

    run("wide_rgba", smooth_random(123, 500, True), 384)
    run("tall_rgb", smooth_random(401, 77, False), 384)
    run("tall_small", smooth_random(401, 77, True), 96)
    # float32 output kept as is: checks rescale + normalise with CLIP statistics independently
    run("upscale_clip", smooth_random(25, 40, False), 48,
        mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711), store="f32")
    run("thin_min_size", smooth_random(5, 300, False), 96)          # short side -> min_size 14
    run("square", smooth_random(50, 50, True), 64)
    run("same_size", smooth_random(64, 30, False), 64)               # no resize at all
    run("vertical_only", smooth_random(5, 64, False), 64)            # width kept, height 5 -> 14
    run("horizontal_only", smooth_random(64, 5, True), 64)           # height kept, width 5 -> 14
    # random noise, many scales: exercises every rounding of the fixed-point path
    for i, (w, h, s) in enumerate([(97, 31, 64), (13, 200, 48), (89, 91, 40)]):
        noise = rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8)
        run(f"noise{i}", Image.fromarray(noise, "RGB"), s)
    with open(out("pre_cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


def main():
    rng = np.random.default_rng(20240607)
    make_png_variants(rng)
    make_other_formats(rng)
    make_bad(rng)
    make_text(rng)
    make_preprocess(rng)


if __name__ == "__main__":
    main()
