"""Krita's layers in and out: pixels, selection and result layers (standard library only:
Krita's bundled Python on Windows and macOS has no numpy).

Krita's `pixelData` is B, G, R, A for 8- and 16-bit integer RGBA and R, G, B, A for float;
the protocol carries R, G, B, A, so integer layers have red and blue swapped on the way.
"""

from __future__ import annotations

import json
from array import array

from limner.protocol import Pixels

from .controller import Source, UnsupportedLayer

#: Krita colour depth -> (protocol sample type, array typecode, Krita stores BGRA)
DEPTHS = {"U8": ("u8", "B", True), "U16": ("u16", "H", True), "F32": ("f32", "f", False)}
SCALE = {"u8": 255, "u16": 65535, "f32": 1.0}


def _samples(data: bytes, typecode: str) -> array:
    values = array(typecode)
    values.frombytes(bytes(data))
    return values


#: Qt image formats of 8 and 16-bit RGBA samples, and a pixel's bytes
_QT_RGBA = {"B": ("Format_RGBA8888", 4), "H": ("Format_RGBA64", 8)}
#: pixels per QImage row when Qt swaps (a row's bits must stay under 2**31)
_QT_ROW = 1 << 20


def swap_red_blue(data: bytes, typecode: str) -> bytes:
    """BGRA <-> RGBA. 8 and 16-bit samples by Qt's rgbSwapped, in the GUI thread's time a
    third of Python's strided slices (a 2048 px layer: 19 ms against 63 at 8 bits, 38
    against 91 at 16); floats (and without Qt) by the slices."""
    fmt = _QT_RGBA.get(typecode)
    try:
        from .qt import QtGui
    except ImportError:
        fmt = None
    if fmt is None or len(data) % fmt[1]:
        values = _samples(data, typecode)
        values[0::4], values[2::4] = values[2::4], values[0::4]
        return values.tobytes()
    name, size = fmt
    data, parts = bytes(data), []
    for start in range(0, len(data), _QT_ROW * size):
        chunk = data[start:start + _QT_ROW * size]
        width = len(chunk) // size
        swapped = QtGui.QImage(chunk, width, 1, len(chunk),
                               getattr(QtGui.QImage.Format, name)).rgbSwapped()
        bits = swapped.constBits()
        bits.setsize(len(chunk))
        parts.append(bytes(bits))
    return b"".join(parts)


def to_rgba(data: bytes, channels: int, sample: str, typecode: str) -> bytes:
    """Result pixels (1, 3 or 4 channels) as RGBA: grey mattes shown as grey, opaque."""
    if channels == 4:
        return bytes(data)
    values = _samples(data, typecode)
    count = len(values) // channels
    out = array(typecode, [0]) * (count * 4)
    for c in range(3):
        out[c::4] = values[(c if channels == 3 else 0)::channels]
    out[3::4] = array(typecode, [SCALE[sample]]) * count
    return out.tobytes()


def to_u8(data: bytes, sample: str) -> bytes:
    """One-channel samples as 8-bit (Krita's selections and masks are 8-bit)."""
    if sample == "u8":
        return bytes(data)
    if sample == "u16":
        return bytes(data)[1::2]     # the high byte of each little-endian sample
    return bytes(min(255, max(0, int(v * 255 + 0.5))) for v in _samples(data, "f"))


def layer_format(node) -> tuple[str, str, bool]:
    model, depth = node.colorModel(), node.colorDepth()
    if node.type() != "paintlayer":
        raise UnsupportedLayer(f"select a paint layer (the active node is a {node.type()})")
    if model != "RGBA" or depth not in DEPTHS:
        raise UnsupportedLayer(
            f"Limner works on RGB layers of 8 or 16 bit integer or 32 bit float; this layer "
            f"is {model} {depth}. Convert it with Image > Convert Image Color Space.")
    return DEPTHS[depth]


def _bounds(node) -> tuple[int, int, int, int]:
    """x, y, width, height of what the layer holds."""
    bounds = node.bounds()
    x, y, w, h = bounds.x(), bounds.y(), bounds.width(), bounds.height()
    if w <= 0 or h <= 0:
        raise UnsupportedLayer(f"the layer {node.name()!r} is empty")
    return x, y, w, h


def _selection(doc, x: int, y: int, w: int, h: int) -> bytes | None:
    """The selection over that rectangle, 8-bit (None when nothing is selected)."""
    selection = doc.selection()
    if selection is None:
        return None
    mask = bytes(selection.pixelData(x, y, w, h))
    if not any(mask):
        raise UnsupportedLayer("the selection does not touch this layer")
    return mask


def _transfer(node) -> str:
    """"linear" for a linear-light profile (Krita's 16-bit and float defaults)."""
    profile = node.colorProfile() or ""
    return "linear" if "g10" in profile or "linear" in profile.lower() else "srgb"


def read_layer(doc, node, with_selection: bool = True) -> Source:
    """The node's pixels within its bounds as protocol RGBA, and the selection as an 8-bit
    mask in the same rectangle (None when nothing is selected)."""
    sample, typecode, bgra = layer_format(node)
    x, y, w, h = _bounds(node)
    data = bytes(node.pixelData(x, y, w, h))
    if bgra:
        data = swap_red_blue(data, typecode)
    mask = _selection(doc, x, y, w, h) if with_selection else None
    return Source(Pixels(data, w, h, 4, sample), mask, (x, y), _transfer(node))


def read_over(node, rect: tuple[int, int, int, int], size: tuple[int, int] | None = None):
    """A paint layer's pixels over another layer's rectangle (x, y, w, h), as protocol
    RGBA: what a hint painted over the layer being worked on sends. With `size` (a
    preview's), 8-bit and scaled to it; None for a float layer, which previews skip."""
    sample, typecode, bgra = layer_format(node)
    x, y, w, h = rect
    data = bytes(node.pixelData(x, y, w, h))
    if size is None:
        return Pixels(swap_red_blue(data, typecode) if bgra else data, w, h, 4, sample)
    if sample == "f32":
        return None
    from .qt import QtCore, QtGui

    if sample == "u16":
        data = data[1::2]           # the high byte of each little-endian sample: 8-bit
    image = QtGui.QImage(data, w, h, w * 4, QtGui.QImage.Format.Format_ARGB32).scaled(
        QtCore.QSize(*size), QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
        QtCore.Qt.TransformationMode.SmoothTransformation).convertToFormat(
        QtGui.QImage.Format.Format_RGBA8888)
    return Pixels(image_bytes(image, 4), image.width(), image.height(), 4, "u8")


def bounds_of(node) -> tuple[int, int, int, int]:
    """x, y, width, height of what the layer holds (what read_layer and read_preview read)."""
    return _bounds(node)


def image_bytes(image, bytes_per_pixel: int) -> bytes:
    """A QImage's pixels, rows packed (Qt pads each row to 4 bytes)."""
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    bits = image.constBits()
    bits.setsize(stride * height)
    data = bytes(bits)
    row = width * bytes_per_pixel
    if stride == row:
        return data
    return b"".join(data[y * stride:y * stride + row] for y in range(height))


def _fit(width: int, height: int, side: int):
    """The QSize of a picture scaled down (never up) to `side` on its long side."""
    from .qt import QtCore

    scale = min(1.0, side / max(width, height))
    return QtCore.QSize(max(1, round(width * scale)), max(1, round(height * scale)))


def grey_bytes(image) -> bytes:
    """A scaled selection's bytes, one per pixel: Qt's smooth scaling of an 8-bit grey
    image gives a 32-bit one in some Qt 5.15 builds (Krita 5.2's), whose bytes read as a
    mask would stripe every fourth column."""
    from .qt import QtGui

    return image_bytes(image.convertToFormat(QtGui.QImage.Format.Format_Grayscale8), 1)


def read_preview(doc, node, side: int) -> Source:
    """The layer and the selection scaled down to `side` on the long side, as 8-bit
    sRGB RGBA: what a live preview sends (Qt scales it, in C++; the layer is not read at
    full depth for a picture 512 px wide)."""
    from .qt import QtCore, QtGui

    sample, _, _ = layer_format(node)
    x, y, w, h = _bounds(node)
    size = _fit(w, h, side)
    keep, smooth = (QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                    QtCore.Qt.TransformationMode.SmoothTransformation)
    if sample == "u8":     # Krita's B, G, R, A bytes are Qt's ARGB32 on little-endian
        data = bytes(node.pixelData(x, y, w, h))
        image = QtGui.QImage(data, w, h, w * 4, QtGui.QImage.Format.Format_ARGB32)
        image = image.scaled(size, keep, smooth)
    else:                  # deeper layers: Krita's own 8-bit thumbnail of them
        image = node.thumbnail(size.width(), size.height())
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    mask = _selection(doc, x, y, w, h)
    if mask is not None:
        mask = grey_bytes(QtGui.QImage(mask, w, h, w, QtGui.QImage.Format.Format_Grayscale8)
                          .scaled(image.size(), keep, smooth))
    # the thumbnail of a deeper layer is already display sRGB
    return Source(Pixels(image_bytes(image, 4), image.width(), image.height(), 4, "u8"),
                  mask, (0, 0), _transfer(node) if sample == "u8" else "srgb")


def shrink(source: Source, side: int) -> Source:
    """A preview's source (8-bit RGBA, from read_preview) and its selection scaled down
    to `side` on the long side (Qt scales them)."""
    from .qt import QtCore, QtGui

    pixels = source.pixels
    size = _fit(pixels.width, pixels.height, side)
    keep, smooth = (QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                    QtCore.Qt.TransformationMode.SmoothTransformation)
    image = QtGui.QImage(pixels.data, pixels.width, pixels.height, pixels.width * 4,
                         QtGui.QImage.Format.Format_RGBA8888).scaled(size, keep, smooth)
    mask = source.mask
    if mask is not None:
        mask = grey_bytes(QtGui.QImage(mask, pixels.width, pixels.height, pixels.width,
                                       QtGui.QImage.Format.Format_Grayscale8)
                          .scaled(size, keep, smooth))
    return Source(Pixels(image_bytes(image, 4), image.width(), image.height(), 4, "u8"),
                  mask, source.offset, source.transfer)


def _paint_layer(doc, name: str, rgba: bytes, layer, pixels, typecode: str, bgra: bool):
    node = doc.createNode(name, "paintlayer")
    if bgra:
        rgba = swap_red_blue(rgba, typecode)
    node.setPixelData(rgba, layer.offset[0], layer.offset[1], pixels.width, pixels.height)
    return node


def apply_results(doc, source, title: str, layers) -> object:
    """Add the result layers ((ResultLayer, Pixels) pairs) in a new group above `source`
    (which stays untouched), top first as the backend lists them: one step in the undo
    history. Krita records every node a script adds, so the group is built in a scratch
    document of the source's colour space, never shown, and a copy of it goes into `doc`
    whole. A matte becomes a transparency mask on a copy of the source where this Krita can
    make one from a script (5.2+), else a hidden grey layer."""
    from krita import Krita

    sample, typecode, bgra = layer_format(source)
    scratch = Krita.instance().createDocument(
        doc.width(), doc.height(), "Limner (building layers)", "RGBA", source.colorDepth(),
        source.colorProfile() or "", doc.resolution())
    try:
        group = scratch.createNode(title, "grouplayer")
        scratch.rootNode().addChildNode(group, None)
        below = None
        for layer, pixels in reversed(layers):     # bottom first
            if layer.role == "mask" and hasattr(scratch, "createTransparencyMask"):
                group.addChildNode(source.duplicate(), below)
                # the copy (now the group's top) as the scratch document sees it: a node
                # keeps the document it came from, and a mask added through that is
                # recorded in that document's history
                node = group.childNodes()[-1]
                node.setName(f"{source.name()} (masked) {layer.name}")
                mask = scratch.createTransparencyMask(layer.name)
                node.addChildNode(mask, None)
                mask.setPixelData(to_u8(pixels.data, pixels.sample), layer.offset[0],
                                  layer.offset[1], pixels.width, pixels.height)
                node.setVisible(False)
            else:
                rgba = to_rgba(pixels.data, pixels.channels, pixels.sample, typecode)
                node = _paint_layer(scratch, layer.name, rgba, layer, pixels, typecode, bgra)
                node.setBlendingMode(layer.blend)     # normal, multiply, dodge: Krita's ids
                node.setVisible(layer.visible and layer.role != "mask")
                group.addChildNode(node, below)
            below = node
        result = group.duplicate()
        source.parentNode().addChildNode(result, source)
    finally:
        scratch.close()
    doc.setActiveNode(source)             # Krita makes the new group active; stay put
    if hasattr(doc, "setAnnotation"):   # provenance travels with the .kra
        provenance = json.dumps([{"name": layer.name, "provenance": layer.provenance}
                                 for layer, _ in layers])
        doc.setAnnotation(f"limner/{title}", "Limner: AI-edited layers and how they were made",
                          provenance.encode())
    doc.refreshProjection()
    return result

