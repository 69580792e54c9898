"""Pixel arrays: sample-type conversion and the selection (crop, then blend back).

Samples are sRGB-encoded (what the user sees) in every sample type; operations work in
float32 on 0..1 values and go to linear light where they mix light; results go back in the
input's sample type.
The selection rule lives here once for every operation: work on the selection's bounds plus
context, then blend through the mask so pixels outside it are bit-identical to the input.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from . import protocol
from .protocol import ProtocolError

DTYPES = {"u8": np.dtype("u1"), "u16": np.dtype("<u2"), "f32": np.dtype("<f4")}
_SCALE = {"u8": 255.0, "u16": 65535.0, "f32": 1.0}


def sample_of(array: np.ndarray) -> str:
    for name, dtype in DTYPES.items():
        if array.dtype == dtype:
            return name
    raise ValueError(f"unsupported sample type {array.dtype}")


def from_bytes(data, spec: protocol.BufferSpec | protocol.Pixels) -> np.ndarray:
    """A (H, W, C) array over a received buffer (no copy)."""
    return np.frombuffer(data, DTYPES[spec.sample]).reshape(spec.height, spec.width,
                                                            spec.channels)


def check_finite(array: np.ndarray, what: str) -> np.ndarray:
    """`array` itself, if every sample is a number: one NaN or infinity in a float layer
    would spread through every filter, blur and fit into the whole result. Otherwise a
    bad_buffer error saying how many and where the first is."""
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            y, x = np.argwhere(bad.any(axis=2) if bad.ndim == 3 else bad)[0][:2]
            raise protocol.ProtocolError(
                protocol.E_BAD_BUFFER,
                f"{what}: {int(bad.sum())} samples are not numbers (NaN or infinite), the "
                f"first at x={int(x)}, y={int(y)}; fill them (or convert the layer to "
                "integer samples) and try again")
    return array


def from_pixels(pixels: protocol.Pixels) -> np.ndarray:
    """A (H, W, C) array over a layer's samples (no copy)."""
    return from_bytes(pixels.data, pixels)


def to_pixels(array: np.ndarray) -> protocol.Pixels:
    """An (H, W[, C]) array's samples as the protocol carries them."""
    if array.ndim == 2:
        array = array[:, :, None]
    sample = sample_of(array)
    array = np.ascontiguousarray(array, DTYPES[sample])
    h, w, c = array.shape
    return protocol.Pixels(memoryview(array).cast("B"), w, h, c, sample)


def to_float(array: np.ndarray) -> np.ndarray:
    """float32 0..1 (floats pass through, so HDR values above 1 survive)."""
    values = array.astype(np.float32)
    return np.divide(values, np.float32(_SCALE[sample_of(array)]), out=values)


def from_float(array: np.ndarray, sample: str) -> np.ndarray:
    """Samples of float 0..1 values, rounded and clipped (in one float32 buffer: a
    2048 px RGBA layer took four temporaries and twice the time)."""
    if sample == "f32":
        return array.astype(DTYPES["f32"])
    scale = np.float32(_SCALE[sample])
    scaled = np.multiply(array, scale, dtype=np.float32)
    np.clip(scaled, 0, scale, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(DTYPES[sample])


def hex_to_rgb(colour: str) -> np.ndarray:
    """A "#rrggbb" colour (sRGB-encoded, as colour pickers give it) as float32 0..1."""
    return np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)], np.float32)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing), bicubic when growing."""
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def upsample_with_detail(small: np.ndarray, original: np.ndarray) -> np.ndarray:
    """A result worked out small (RGB float), scaled up to the original's size with the
    photo's own detail finer than the working size put back (as luminance, so drawings
    stay grey): a 4000 px layer keeps its 4000 px sharpness under 1024 px strokes."""
    h, w = original.shape[:2]
    up = resize(small, w, h)
    if w <= small.shape[1]:
        return up
    luma = cv2.cvtColor(original, cv2.COLOR_RGB2GRAY)
    coarse = resize(resize(luma, small.shape[1], small.shape[0]), w, h)
    return up + (luma - coarse)[:, :, None]


def selection_box(mask: np.ndarray | None, shape: tuple[int, int], context: float = 0.5,
                  min_context: int = 32) -> tuple[slice, slice]:
    """The selection's bounding box plus context padding, clipped to the layer: a matting
    model needs to see the person around the selection (with 0.15 the astronaut's matte
    inside a half-image selection differed by 0.11 on average in its lower part). The whole layer when there is no mask."""
    h, w = shape
    if mask is None:
        return slice(0, h), slice(0, w)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ProtocolError(protocol.E_EMPTY_SELECTION,
                            "the selection is empty: select part of the layer, or select none "
                            "to work on the whole layer")
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = max(min_context, int(context * max(y1 - y0, x1 - x0)))
    return slice(max(0, y0 - pad), min(h, y1 + pad)), slice(max(0, x0 - pad), min(w, x1 + pad))


def blend_into(base: np.ndarray, edited: np.ndarray, box: tuple[slice, slice],
               mask: np.ndarray | None) -> np.ndarray:
    """`base` (the layer as it would be untouched) with `edited` (float 0..1, or samples of
    the base's own type; box-sized) blended in through the selection mask. Outside the
    mask, the result is `base` exactly."""
    sample = sample_of(base)
    out = base.copy()
    if mask is None:
        out[box] = edited if edited.dtype == base.dtype else from_float(edited, sample)
        return out
    if edited.dtype == base.dtype and sample != "f32":
        edited = to_float(edited)
    weight = (mask[box].astype(np.float32) / 255.0)[:, :, None]
    region = base[box]
    mixed = from_float(to_float(region) * (1 - weight) + edited * weight, sample)
    out[box] = np.where(weight > 0, mixed, region)
    return out


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    """`image` (H, W[, C]) scaled down (area average) so its long side is at most `side`;
    itself when it already is."""
    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    return small.reshape(small.shape[:2] + image.shape[2:])


def with_alpha(image: np.ndarray) -> np.ndarray:
    """RGBA version of an RGB or RGBA array (opaque alpha added), same sample type."""
    if image.shape[2] == 4:
        return image
    opaque = np.full(image.shape[:2] + (1,), _SCALE[sample_of(image)], image.dtype)
    return np.concatenate([image, opaque], axis=2)


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB-encoded 0..1 to linear light (the IEC 61966-2-1 curve), float32."""
    return _per_band(values, lambda v: np.where(
        v <= 0.04045, v / 12.92, ((np.maximum(v, 0) + 0.055) / 1.055) ** 2.4))


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    return _per_band(values, lambda v: np.where(
        v <= 0.0031308, v * 12.92, 1.055 * np.maximum(v, 0) ** (1 / 2.4) - 0.055))


#: values a transfer curve works on at once: its five temporaries stay a few MB, not
#: 156 MB for a 2048 px RGB layer
BAND = 1 << 20


def _per_band(values, curve) -> np.ndarray:
    """`curve` (element-wise, float32 in and out) over `values` a band at a time."""
    v = np.asarray(values, np.float32)
    out = np.empty(v.shape, np.float32)
    flat_in, flat_out = v.reshape(-1), out.reshape(-1)     # a copy only if v is strided
    for start in range(0, flat_in.size, BAND):
        flat_out[start:start + BAND] = curve(flat_in[start:start + BAND])
    return out


@functools.cache
def _decode_table(sample: str) -> np.ndarray:
    """Linear light of every integer sample value."""
    top = int(_SCALE[sample])
    return srgb_to_linear(np.arange(top + 1, dtype=np.float32) / top).astype(np.float32)


@functools.cache
def _encode_table_u8() -> np.ndarray:
    """u8 sRGB samples of linear values quantised to 16 bits (finer than one u8 step
    everywhere, the darkest included)."""
    return from_float(linear_to_srgb(np.arange(65536, dtype=np.float32) / 65535), "u8")


def to_linear(samples: np.ndarray) -> np.ndarray:
    """Linear-light float32 of sRGB-encoded samples (every channel given): a table look-up
    for integer samples, which is several times faster than the curve on a large layer."""
    sample = sample_of(samples)
    if sample == "f32":
        return srgb_to_linear(samples)
    return _decode_table(sample)[samples]


def from_linear(values: np.ndarray, sample: str) -> np.ndarray:
    """sRGB-encoded samples of linear-light float values (clipped to 0..1 for integer
    samples)."""
    if sample == "u8":
        index = np.multiply(values, np.float32(65535), dtype=np.float32)
        np.add(index, np.float32(0.5), out=index)
        np.clip(index, 0, 65535, out=index)
        return _encode_table_u8()[index.astype(np.uint16)]
    return from_float(linear_to_srgb(values), sample)


def encode_srgb(image: np.ndarray) -> np.ndarray:
    """Linear-light samples to sRGB-encoded ones, same sample type (alpha untouched)."""
    return _map_colour(image, linear_to_srgb)


def decode_srgb(image: np.ndarray) -> np.ndarray:
    return _map_colour(image, srgb_to_linear)


def _map_colour(image: np.ndarray, curve) -> np.ndarray:
    values = to_float(image)
    values[:, :, :3] = curve(values[:, :, :3])
    return from_float(values, sample_of(image))
