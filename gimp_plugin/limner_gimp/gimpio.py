# Limner for GIMP 3: pixels and metadata in and out of GIMP, and the backend's link.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""GIMP I/O: a drawable (and the selection over it) read at the image's own precision,
perceptual sRGB; a hint read over the layer worked on; result layers written above the
source; the image's XMP marked as AI-edited; the capabilities the installer wrote beside
the plug-in; a client of the running backend."""

import json
import os
from dataclasses import dataclass

from gi.repository import Babl, Gegl, Gimp
from limner.protocol import Pixels
from limner.schema import Capabilities

HERE = os.path.dirname(os.path.abspath(__file__))
#: GIMP precision family -> (protocol sample type, babl sample name)
SAMPLES = {"U8": ("u8", "u8"), "U16": ("u16", "u16"), "FLOAT": ("f32", "float"),
           "HALF": ("f32", "float"), "DOUBLE": ("f32", "float"), "U32": ("f32", "float")}
#: a result layer's provenance (operation, engine, parameters that ran), JSON, kept in
#: the XCF with the layer
PROVENANCE = "limner-provenance"
LAYER_MODES = {"normal": Gimp.LayerMode.NORMAL, "multiply": Gimp.LayerMode.MULTIPLY,
               "dodge": Gimp.LayerMode.DODGE}


def installed_capabilities():
    """The backend's capabilities as the installer wrote them (GIMP registers procedures
    at start-up, before any backend runs)."""
    with open(os.path.join(HERE, "capabilities.json")) as fh:
        return Capabilities.from_json(json.load(fh))


def connect(on_wait=None):
    """A client of the running backend (started when none runs; `on_wait(seconds)`
    meanwhile)."""
    from limner import launcher
    from limner.client import Client

    return Client.from_info(launcher.ensure_running("gimp", on_wait=on_wait),
                            name=f"gimp {Gimp.version()}")


@dataclass(frozen=True)
class Source:
    """A drawable read for the backend: its pixels, the selection over it (u8 bytes, None
    when nothing is selected), where it sits in the image, and its babl sample name."""

    pixels: Pixels
    mask: bytes | None
    offset: tuple[int, int]
    babl: str


def in_its_space(drawable, encoding):
    """The babl format `encoding` (such as "R'G'B'A u16") in the drawable's own colour
    space: its numbers as they are, with no conversion to sRGB (which would shift an Adobe
    RGB image's colours and clip what sRGB cannot hold)."""
    return Babl.get_name(Babl.format_with_space(encoding, drawable.get_format()))


def colour_hex(colour):
    data = colour.get_bytes(Babl.format("R'G'B' u8")).get_data()
    return "#" + bytes(data[:3]).hex()


def read_drawable(drawable, with_selection=True, side=None):
    """The drawable at its precision, perceptual, RGBA, in the image's own colour space
    (what the backend treats as sRGB-encoded values), plus the selection as an 8-bit mask
    in drawable coordinates (None when nothing is selected). With `side`: scaled down by
    GEGL to that long side, 8-bit (a preview's)."""
    image = drawable.get_image()
    family = image.get_precision().value_nick.split("-")[0].upper()
    sample, babl = SAMPLES[family] if side is None else ("u8", "u8")
    full_width, full_height = drawable.get_width(), drawable.get_height()
    scale = 1.0 if side is None else min(1.0, side / max(full_width, full_height))
    width, height = max(1, round(full_width * scale)), max(1, round(full_height * scale))
    rect = Gegl.Rectangle.new(0, 0, width, height)
    data = drawable.get_buffer().get(rect, scale, in_its_space(drawable, f"R'G'B'A {babl}"),
                                     Gegl.AbyssPolicy.CLAMP)
    mask = None
    _, x, y = drawable.get_offsets()
    if with_selection and not Gimp.Selection.is_empty(image):
        selection = image.get_selection().get_buffer()
        mask = selection.get(Gegl.Rectangle.new(round(x * scale), round(y * scale), width,
                                                height), scale, "Y u8", Gegl.AbyssPolicy.NONE)
        if not any(mask):
            raise ValueError("the selection does not touch this layer")
    return Source(Pixels(bytes(data), width, height, 4, sample),
                  None if mask is None else bytes(mask), (x, y), babl)


def read_over(hint, source, side=None):
    """A hint (a layer, or a channel such as a saved selection) over `source`'s rectangle,
    at its size (with `side`: the preview's), 8-bit: a layer as RGBA (hinted where it is
    painted), a channel as grey RGB (hinted where it is light; nothing outside it)."""
    _, hx, hy = hint.get_offsets()
    _, sx, sy = source.get_offsets()
    width, height = source.get_width(), source.get_height()
    scale = 1.0 if side is None else min(1.0, side / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    rect = Gegl.Rectangle.new(round((sx - hx) * scale), round((sy - hy) * scale), w, h)
    if isinstance(hint, Gimp.Layer):
        data = hint.get_buffer().get(rect, scale, in_its_space(hint, "R'G'B'A u8"),
                                     Gegl.AbyssPolicy.NONE)
        return Pixels(bytes(data), w, h, 4, "u8")
    grey = bytes(hint.get_buffer().get(rect, scale, "Y u8", Gegl.AbyssPolicy.NONE))
    rgb = bytearray(len(grey) * 3)
    rgb[0::3] = rgb[1::3] = rgb[2::3] = grey
    return Pixels(bytes(rgb), w, h, 3, "u8")


def mark_ai_edited(image, layers):
    """The image's XMP says it was edited with AI (IPTC digital source type, the AI system
    and its version), so GIMP's own export writes it when the user exports with XMP."""
    from limner.provenance import xmp_fields, xmp_packet

    fields = xmp_fields([layer.provenance for layer, _ in layers])
    if fields:
        metadata = image.get_metadata() or Gimp.Metadata.new()
        metadata.set_from_xmp(xmp_packet(fields))
        image.set_metadata(metadata)


def write_layers(image, source, layers, babl):
    """Insert the result layers ((ResultLayer, Pixels) pairs, top first as the backend
    lists them) above `source`, each with its provenance (a PROVENANCE parasite); a matte
    becomes the layer mask of a copy of the source."""
    parent = source.get_parent()
    position = image.get_item_position(source)
    formats = {1: "Y", 3: "R'G'B'", 4: "R'G'B'A"}
    added = []
    for layer, pixels in reversed(layers):    # bottom first, each inserted above the last
        rect = Gegl.Rectangle.new(0, 0, pixels.width, pixels.height)
        fmt = in_its_space(source, f"{formats[pixels.channels]} {babl}")
        if layer.role == "mask":
            node = source.copy()
            node.set_name(f"{source.get_name()} (masked) {layer.name}")
            image.insert_layer(node, parent, position)
            mask = node.create_mask(Gimp.AddMaskType.WHITE)
            node.add_mask(mask)
            buffer = mask.get_buffer()
            buffer.set(rect, fmt, bytes(pixels.data))
            buffer.flush()
            mask.update(0, 0, pixels.width, pixels.height)
            node.set_visible(False)
        else:
            node = Gimp.Layer.new(image, layer.name, pixels.width, pixels.height,
                                  Gimp.ImageType.RGBA_IMAGE, 100.0,
                                  LAYER_MODES.get(layer.blend, Gimp.LayerMode.NORMAL))
            image.insert_layer(node, parent, position)
            node.set_offsets(*layer.offset)
            buffer = node.get_buffer()             # RGB-only results become opaque RGBA
            buffer.set(rect, fmt, bytes(pixels.data))
            buffer.flush()
            node.update(0, 0, pixels.width, pixels.height)
            node.set_visible(layer.visible)
        node.attach_parasite(Gimp.Parasite.new(PROVENANCE, Gimp.PARASITE_PERSISTENT,
                                               list(json.dumps(layer.provenance).encode())))
        added.append(node)
    return added
