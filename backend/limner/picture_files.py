"""The pictures `limner run` and `batch` read and write, with what a retoucher's file carries
besides pixels: its colour profile (kept as it is, or the pixels converted to sRGB with
LittleCMS when asked), its EXIF (camera, date, GPS; the orientation applied to the pixels
and so reset), its IPTC and its XMP rights (creator, copyright, usage terms), written
beside Limner's own provenance. Output as PNG, TIFF (16-bit for a deep picture) or JPEG.

The backend treats the samples as sRGB-encoded; a picture in another RGB space is worked
on as its numbers are and written back with its own profile, so what is left untouched
comes back exactly (see README, "Colour and metadata").
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from . import imaging

#: --format -> file extension
FORMATS = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg"}
#: the EXIF a result keeps: the camera, when and where, who and whose
EXIF_KEPT = ("Exif.Photo.", "Exif.GPSInfo.")
EXIF_IMAGE_KEPT = {"Make", "Model", "DateTime", "Artist", "Copyright", "ImageDescription",
                   "XResolution", "YResolution", "ResolutionUnit"}
#: the XMP a result keeps: rights and credit (Limner sets its own provenance fields)
XMP_RIGHTS = ("Xmp.dc.creator", "Xmp.dc.rights", "Xmp.xmpRights.", "Xmp.photoshop.Credit",
              "Xmp.photoshop.Source", "Xmp.photoshop.CaptionWriter",
              "Xmp.iptc.CreatorContactInfo", "Xmp.plus.")
#: EXIF orientation -> how to turn the stored pixels upright (numpy)
UPRIGHT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 1)[::-1], 8: lambda a: np.rot90(a, 1)}


@dataclass(frozen=True)
class Metadata:
    """What a picture file carries besides pixels that its results carry too."""

    icc: bytes | None = None
    exif: dict = field(default_factory=dict)
    iptc: dict = field(default_factory=dict)
    xmp: dict = field(default_factory=dict)

    @property
    def kept(self) -> list[str]:
        """In words, for the CLI to say what went over."""
        return [what for what, there in (("colour profile", self.icc), ("EXIF", self.exif),
                                         ("IPTC", self.iptc), ("XMP rights", self.xmp))
                if there]


@dataclass(frozen=True)
class SourcePicture:
    pixels: np.ndarray             # (H, W, 3|4) u8, u16 or f32, upright
    metadata: Metadata


def metadata_of(data: bytes) -> tuple[Metadata, int]:
    """(what the file carries, its EXIF orientation): nothing for a format Exiv2 cannot
    read (BMP) or a file whose metadata is broken."""
    import pyexiv2

    try:
        image = pyexiv2.ImageData(data)
    except (RuntimeError, ValueError):
        return Metadata(), 1
    try:
        icc = image.read_icc() or None
        exif, iptc, xmp = image.read_exif(), image.read_iptc(), image.read_xmp()
    except (RuntimeError, ValueError, UnicodeDecodeError):
        return Metadata(), 1
    finally:
        image.close()
    try:
        orientation = int(exif.get("Exif.Image.Orientation", "1"))
    except ValueError:
        orientation = 1
    kept = {key: value for key, value in exif.items()
            if key.startswith(EXIF_KEPT) and "Tag" not in key.rsplit(".", 1)[1]
            or key.startswith("Exif.Image.") and key[11:] in EXIF_IMAGE_KEPT}
    if orientation != 1:
        kept["Exif.Image.Orientation"] = "1"        # the pixels are stored upright now
    rights = {key: value for key, value in xmp.items() if key.startswith(XMP_RIGHTS)}
    return Metadata(icc, kept, iptc, rights), orientation


def read_source(path, what: str, to_srgb: bool = False) -> SourcePicture:
    """A picture the command line names, upright, with its metadata; with `to_srgb`, its
    pixels converted from its colour profile to sRGB (8-bit pictures: LittleCMS through
    Pillow, which has no 16-bit RGB)."""
    from .ora import read_picture_bytes

    pixels, data = read_picture_bytes(path, what)
    metadata, orientation = metadata_of(data)
    if orientation in UPRIGHT and pixels.dtype != np.uint8:   # 8-bit: Pillow turned it
        pixels = np.ascontiguousarray(UPRIGHT[orientation](pixels))
    if to_srgb and metadata.icc:
        if pixels.dtype != np.uint8:
            raise ValueError(f"{what}: --to-srgb converts 8-bit pictures only (Pillow's "
                             "LittleCMS has no 16-bit RGB); without it a deep picture keeps "
                             "its own colour profile")
        pixels = srgb_from(pixels, metadata.icc)
        metadata = replace(metadata, icc=srgb_profile())
    return SourcePicture(pixels, metadata)


def srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def srgb_from(pixels: np.ndarray, icc: bytes) -> np.ndarray:
    """8-bit RGB(A) in the space of the ICC profile `icc`, converted to sRGB (relative
    colorimetric, as a photo editor converts); alpha as it was."""
    from PIL import Image, ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        raise ValueError("its colour profile cannot be read, so it cannot be converted "
                         "to sRGB") from None
    rgb = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]))
    converted = np.asarray(ImageCms.profileToProfile(
        rgb, source, ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB"))
    return np.dstack([converted, pixels[:, :, 3:]]) if pixels.shape[2] == 4 else converted


def png_with_icc(data: bytes, icc: bytes) -> bytes:
    """A PNG with an iCCP chunk (the profile, zlib-compressed, named as the PNG spec asks)
    right after its header."""
    body = b"ICC profile\0\0" + zlib.compress(icc)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + \
        struct.pack(">I", zlib.crc32(b"iCCP" + body) & 0xFFFFFFFF)
    header_end = 8 + 8 + 13 + 4                        # signature, IHDR's length+type, data, CRC
    return data[:header_end] + chunk + data[header_end:]


def has_transparency(pixels: np.ndarray) -> bool:
    if pixels.ndim < 3 or pixels.shape[2] != 4:
        return False
    return bool((imaging.to_float(pixels[:, :, 3:]) < 1).any())


def format_for(pixels: np.ndarray, wanted: str) -> str:
    """The format a layer is written in: the one asked for, except that a layer with
    transparency never goes to JPEG (which has none): it is written as PNG."""
    return "png" if wanted == "jpeg" and has_transparency(pixels) else wanted


def encode(pixels: np.ndarray, fmt: str, metadata: Metadata, provenance_xmp: dict,
           quality: int = 95) -> bytes:
    """The layer's file: `fmt` png, tiff or jpeg (8-bit; a deep layer keeps its depth in
    PNG and TIFF, 16-bit), with the source's profile, EXIF, IPTC and XMP rights and
    Limner's provenance fields."""
    import pyexiv2

    from .ora import png_bytes

    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if fmt == "png":
        data = png_bytes(pixels)
    else:
        sample = imaging.sample_of(pixels)
        depth = "u8" if fmt == "jpeg" or sample == "u8" else "u16"
        out = pixels if sample == depth else imaging.from_float(imaging.to_float(pixels), depth)
        if out.shape[2] == 1:
            out = np.repeat(out, 3, axis=2)
        if fmt == "jpeg":
            out = out[:, :, :3]
        order = cv2.COLOR_RGBA2BGRA if out.shape[2] == 4 else cv2.COLOR_RGB2BGR
        # JPEG: full-resolution colour (4:4:4) at the qualities a retoucher delivers
        options = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] + (
            [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
            if quality >= 90 else []) if fmt == "jpeg" else \
            [cv2.IMWRITE_TIFF_COMPRESSION, 5]                        # LZW
        ok, encoded = cv2.imencode(FORMATS[fmt], cv2.cvtColor(out, order), options)
        if not ok:
            raise ValueError(f"{fmt} encoding failed")
        data = encoded.tobytes()
    icc = metadata.icc if pixels.shape[2] >= 3 else None    # a matte is data, not colour
    if icc and fmt == "png":           # Exiv2 writes PNG's iCCP with an empty name, which
        data, icc = png_with_icc(data, icc), None      # libpng and strict readers refuse
    xmp = {**metadata.xmp, **provenance_xmp}
    if not (icc or metadata.exif or metadata.iptc or xmp):
        return data
    image = pyexiv2.ImageData(data)
    try:
        if icc:
            image.modify_icc(icc)
        if metadata.exif:
            image.modify_exif(metadata.exif)
        if metadata.iptc:
            image.modify_iptc(metadata.iptc)
        if xmp:
            image.modify_xmp(xmp)
        return image.get_bytes()
    finally:
        image.close()
