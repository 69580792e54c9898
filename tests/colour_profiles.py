"""A colour profile the tests make themselves: Adobe RGB (1998) as an ICC v2 matrix/TRC
profile (its D50-adapted colorants and its 563/256 gamma, as in Adobe's own file), and a
camera JPEG in it carrying EXIF, GPS, IPTC and XMP rights, for the files tests."""

from __future__ import annotations

import io
import struct

import numpy as np

#: Adobe RGB (1998)'s primaries adapted to D50 (the ICC connection space), and its gamma
ADOBE_RGB_COLORANTS = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087),
                       (0.14919, 0.06322, 0.74457))
ADOBE_RGB_GAMMA = 563 / 256
D50 = (0.9642, 1.0, 0.8249)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(_s15(v) for v in xyz)


def _text_description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text
            + bytes(8) + bytes(3) + bytes(67))


def icc_profile(name: str, colorants, gamma: float) -> bytes:
    """An RGB display profile (ICC v2): three colorants (XYZ, D50) and one gamma."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = [(b"desc", _text_description(name)),
            (b"cprt", b"text" + bytes(4) + b"No copyright, use freely\0"),
            (b"wtpt", _xyz(D50)),
            (b"rXYZ", _xyz(colorants[0])), (b"gXYZ", _xyz(colorants[1])),
            (b"bXYZ", _xyz(colorants[2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = [], b""
    for signature, body in tags:
        table.append(signature + struct.pack(">II", offset + len(data), len(body)))
        data += body + bytes(-len(body) % 4)
    body = struct.pack(">I", len(tags)) + b"".join(table) + data
    header = (struct.pack(">I", 128 + len(body)) + bytes(4) + bytes([2, 0x10, 0, 0])
              + b"mntrRGB XYZ " + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp"
              + bytes(4 + 4 + 4 + 4 + 8 + 4) + b"".join(_s15(v) for v in D50)
              + bytes(4 + 16 + 28))
    assert len(header) == 128
    return header + body


def adobe_rgb() -> bytes:
    return icc_profile("Adobe RGB (1998) compatible, made by Limner's tests",
                       ADOBE_RGB_COLORANTS, ADOBE_RGB_GAMMA)


#: what the camera JPEG carries besides its pixels
EXIF = {"Exif.Image.Make": "Canon", "Exif.Image.Model": "Canon EOS R5",
        "Exif.Image.Artist": "Jane Doe", "Exif.Image.Copyright": "(c) 2024 Jane Doe",
        "Exif.Photo.DateTimeOriginal": "2024:05:06 07:08:09",
        "Exif.Photo.FNumber": "28/10", "Exif.GPSInfo.GPSLatitudeRef": "N",
        "Exif.GPSInfo.GPSLatitude": "52/1 30/1 0/1", "Exif.GPSInfo.GPSLongitudeRef": "E",
        "Exif.GPSInfo.GPSLongitude": "13/1 24/1 0/1"}
IPTC = {"Iptc.Application2.Byline": ["Jane Doe"],
        "Iptc.Application2.Copyright": "(c) 2024 Jane Doe"}
XMP = {"Xmp.dc.creator": ["Jane Doe"],
       "Xmp.dc.rights": {'lang="x-default"': "(c) 2024 Jane Doe, all rights reserved"},
       "Xmp.xmpRights.UsageTerms": {'lang="x-default"': "Editorial use only"}}


def camera_jpeg(rgb: np.ndarray, icc: bytes, orientation: int = 1) -> bytes:
    """An 8-bit RGB picture as a camera writes it: JPEG with the profile embedded and the
    EXIF (orientation included), IPTC and XMP rights above."""
    import pyexiv2
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=97, icc_profile=icc)
    image = pyexiv2.ImageData(buffer.getvalue())
    try:
        image.modify_exif({**EXIF, "Exif.Image.Orientation": str(orientation)})
        image.modify_iptc(IPTC)
        image.modify_xmp(XMP)
        return image.get_bytes()
    finally:
        image.close()
