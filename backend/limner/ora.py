"""Files a person opens: PNG layers and an OpenRaster (.ora) stack that GIMP and Krita both
read. OpenRaster is a zip of PNGs plus stack.xml; the format is small and stable, and the
only Python library for it (pyora) has been unmaintained since 2021, so it is written here.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np
from PIL import Image, ImageOps

from . import imaging, protocol
from .protocol import ProtocolError

#: the largest picture anything may name or read (a layer's file for `limner run` and
#: `batch`, a backdrop, a reference, a mask), pixels; and its file, bytes
MAX_PICTURE_PIXELS = 64_000_000
MAX_PICTURE_BYTES = 1 << 30


def read_picture(path, what: str) -> np.ndarray:
    """A picture a parameter or the command line names. It is read only if it is a
    regular file (named_files), its size is read from its header and refused before
    anything is decoded, and every way of failing to read it gives the same answer: a
    client must not learn from it whether some private file exists."""
    return read_picture_bytes(path, what)[0]


def read_picture_bytes(path, what: str) -> tuple[np.ndarray, bytes]:
    """read_picture's picture, and the file's bytes (for what it carries besides
    pixels: picture_files)."""
    from . import named_files

    cannot = ProtocolError(protocol.E_BAD_PARAMETER,
                           f"{what}: cannot read {protocol.shown(str(path))} as an image")
    try:
        data = named_files.read_bytes(path, what, MAX_PICTURE_BYTES)
    except ProtocolError:
        raise cannot from None
    too_large = f"{what}: {{}} is larger than the {MAX_PICTURE_PIXELS / 1e6:.0f} " \
                "megapixels a picture may have"
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError:
        raise ProtocolError(protocol.E_TOO_LARGE, too_large.format("the picture")) from None
    except (OSError, ValueError, SyntaxError):
        width = height = None          # a format only OpenCV reads (some TIFFs, EXR)
    if width is not None and width * height > MAX_PICTURE_PIXELS:
        raise ProtocolError(protocol.E_TOO_LARGE, too_large.format(f"{width}x{height}"))
    try:
        picture = decode_image(data)
    except (OSError, ValueError, SyntaxError, cv2.error):
        raise cannot from None
    if picture.shape[0] * picture.shape[1] > MAX_PICTURE_PIXELS:
        raise ProtocolError(protocol.E_TOO_LARGE,
                            too_large.format(f"{picture.shape[1]}x{picture.shape[0]}"))
    return imaging.check_finite(picture, what), data


def read_image(path) -> np.ndarray:
    """(H, W, 3|4) array in the file's own precision (u8, u16 or f32), for files this
    program chooses (the sample portraits); what a user names goes through read_picture."""
    with open(path, "rb") as file:
        return decode_image(file.read())


def decode_image(data: bytes) -> np.ndarray:
    """(H, W, 3|4) array of an encoded picture in its own precision: u8, u16 or f32."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ValueError("not a picture OpenCV can read")
    if decoded.dtype == np.uint8:  # Pillow honours the EXIF orientation of camera JPEGs
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
    if decoded.dtype not in (np.uint16, np.float32):
        raise ValueError(f"unsupported sample type {decoded.dtype}")
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    if decoded.shape[2] == 1:
        return np.repeat(decoded, 3, axis=2)
    order = cv2.COLOR_BGRA2RGBA if decoded.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(decoded, order)


def png_bytes(pixels: np.ndarray, bits: int | None = None) -> bytes:
    """PNG of a (H, W, 1|3|4) array: 8-bit for u8 (or bits=8), else 16-bit."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    sample = imaging.sample_of(pixels)
    if bits == 8 and sample != "u8":
        pixels = imaging.from_float(imaging.to_float(pixels), "u8")
    elif sample == "f32":
        pixels = imaging.from_float(imaging.to_float(pixels), "u16")
    channels = pixels.shape[2]
    if channels == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    elif channels == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


@dataclass
class StackLayer:
    name: str
    pixels: np.ndarray            # (H, W, C) any sample type
    x: int = 0
    y: int = 0
    visible: bool = True
    blend: str = "normal"         # normal, multiply or dodge (colour dodge)
    attributes: dict = field(default_factory=dict)  # written as limner:* attributes


_COMPOSITE_OP = {"normal": "svg:src-over", "multiply": "svg:multiply",
                 "dodge": "svg:color-dodge"}


def _rgba8(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    u8 = imaging.from_float(imaging.to_float(pixels), "u8")
    if u8.shape[2] == 1:  # a matte shows as grey
        u8 = np.repeat(u8, 3, axis=2)
    return imaging.with_alpha(u8)


def _flatten(layers: list[StackLayer], width: int, height: int) -> np.ndarray:
    """The visible stack composited (source-over), for mergedimage.png."""
    canvas = np.zeros((height, width, 4), np.float32)
    for layer in reversed(layers):  # bottom first
        if not layer.visible:
            continue
        src = _rgba8(layer.pixels).astype(np.float32) / 255
        h, w = src.shape[:2]
        x0, y0 = max(layer.x, 0), max(layer.y, 0)
        x1, y1 = min(layer.x + w, width), min(layer.y + h, height)
        if x0 >= x1 or y0 >= y1:
            continue
        s = src[y0 - layer.y:y1 - layer.y, x0 - layer.x:x1 - layer.x]
        d = canvas[y0:y1, x0:x1]
        colour = s[:, :, :3]
        if layer.blend == "multiply":
            colour = colour * d[:, :, :3]
        elif layer.blend == "dodge":
            colour = np.minimum(d[:, :, :3] / np.maximum(1 - colour, 1e-6), 1)
        a = s[:, :, 3:] + d[:, :, 3:] * (1 - s[:, :, 3:])
        rgb = (colour * s[:, :, 3:] + d[:, :, :3] * d[:, :, 3:] * (1 - s[:, :, 3:]))
        d[:, :, :3] = np.where(a > 0, rgb / np.maximum(a, 1e-6), 0)
        d[:, :, 3:] = a
    return np.rint(canvas * 255).astype(np.uint8)


def write_ora(path, layers: list[StackLayer], width: int, height: int,
              xmp: dict | None = None) -> None:
    """An OpenRaster file; `layers` top first. Layer PNGs are 8-bit, which every
    OpenRaster reader takes; full-precision PNGs are written beside it by the CLI. `xmp`
    (provenance.xmp_fields): set on the merged image and on each layer made with AI."""
    from .provenance import with_xmp, xmp_fields

    entries = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "image/openraster",
                    compress_type=zipfile.ZIP_STORED)  # first and uncompressed, per the spec
        for i, layer in enumerate(layers):
            src = f"data/layer{i}.png"
            made = xmp_fields([layer.attributes.get("provenance", {})])
            zf.writestr(src, with_xmp(png_bytes(_rgba8(layer.pixels)), made))
            extra = "".join(f" limner:{k}={quoteattr(v if isinstance(v, str) else json.dumps(v))}"
                            for k, v in layer.attributes.items())
            entries.append(f'    <layer name={quoteattr(layer.name)} src="{src}" x="{layer.x}" '
                           f'y="{layer.y}" opacity="1.0" composite-op="{_COMPOSITE_OP[layer.blend]}" '
                           f'visibility="{"visible" if layer.visible else "hidden"}"{extra}/>')
        stack = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                 f'<image version="0.0.5" w="{width}" h="{height}" '
                 'xmlns:limner="urn:limner:1">\n  <stack>\n'
                 + "\n".join(entries) + "\n  </stack>\n</image>\n")
        zf.writestr("stack.xml", stack)
        merged = _flatten(layers, width, height)
        zf.writestr("mergedimage.png", with_xmp(png_bytes(merged), xmp or {}))
        thumb = Image.fromarray(merged)
        thumb.thumbnail((256, 256))
        buf = io.BytesIO()
        thumb.save(buf, "PNG")
        zf.writestr("Thumbnails/thumbnail.png", buf.getvalue())
