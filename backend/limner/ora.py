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

#: the largest picture a file parameter may name (a backdrop, a style reference), pixels
MAX_PICTURE_PIXELS = 64_000_000


def read_picture(path: str, what: str) -> np.ndarray:
    """A picture a parameter names, for an operation. Every way of failing gives the same
    answer (missing, unreadable, a folder, not an image): a client must not learn from it
    whether some private file exists. Its size is read from the header and refused before
    anything is decoded."""
    cannot = ProtocolError(protocol.E_BAD_PARAMETER,
                           f"{what}: cannot read {protocol.shown(path)} as an image")
    try:
        with Image.open(path) as im:
            width, height = im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        raise cannot from None
    if width * height > MAX_PICTURE_PIXELS:
        raise ProtocolError(protocol.E_TOO_LARGE,
                            f"{what}: {width}x{height} is larger than the "
                            f"{MAX_PICTURE_PIXELS / 1e6:.0f} megapixels a picture may have")
    try:
        return read_image(path)
    except (OSError, ValueError):
        raise cannot from None


def read_image(path: str) -> np.ndarray:
    """(H, W, 3|4) array in the file's own precision: u8, u16 or f32."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ValueError(f"cannot read {path} as an image")
    if data.dtype == np.uint8:  # Pillow honours the EXIF orientation of camera JPEGs
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
    if data.dtype not in (np.uint16, np.float32):
        raise ValueError(f"{path}: unsupported sample type {data.dtype}")
    if data.ndim == 2:
        data = data[:, :, None]
    if data.shape[2] == 1:
        return np.repeat(data, 3, axis=2)
    order = cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(data, order)


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
