#!/usr/bin/env python3
# Limner for GIMP 3: AI portrait retouching through the local Limner backend.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""One image procedure per backend operation (Filters > Limner > …), registered from the
copy of the backend's capabilities that the installer writes beside this file, so a new
operation or parameter needs no change here. Each procedure reads the drawable (at the
image's own precision, perceptual sRGB) and the selection, runs the operation on the
backend (starting it when none runs), and inserts the result layers above the source in
one undo group. Every procedure also runs non-interactively with its arguments. When the
backend's operations differ from the installed copy, it says to re-run the installer."""

import json
import os
import sys
from dataclasses import dataclass

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
from gi.repository import Babl, Gegl, Gimp, GimpUi, GLib, GObject

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "vendor")]   # names.py; the client, websockets

from limner.protocol import Pixels  # noqa: E402
from names import argument_name, choice_nick, procedure_name, schema_difference  # noqa: E402

#: GIMP precision family -> (protocol sample type, babl sample name)
SAMPLES = {"U8": ("u8", "u8"), "U16": ("u16", "u16"), "FLOAT": ("f32", "float"),
           "HALF": ("f32", "float"), "DOUBLE": ("f32", "float"), "U32": ("f32", "float")}
LAYER_MODES = {"normal": Gimp.LayerMode.NORMAL, "multiply": Gimp.LayerMode.MULTIPLY,
               "dodge": Gimp.LayerMode.DODGE}


def load_capabilities():
    with open(os.path.join(HERE, "capabilities.json")) as fh:
        return json.load(fh)


@dataclass(frozen=True)
class Source:
    """A drawable read for the backend: its pixels, the selection over it (u8 bytes, None
    when nothing is selected), where it sits in the image, and its babl sample name."""

    pixels: Pixels
    mask: bytes | None
    offset: tuple[int, int]
    babl: str


def add_argument(procedure, schema):
    """The GIMP argument (and so the dialog control) for one parameter schema."""
    name, label, blurb = argument_name(schema["name"]), schema["label"], schema.get("help", "")
    flags = GObject.ParamFlags.READWRITE
    kind, default = schema["kind"], schema["default"]
    if kind == "float":
        procedure.add_double_argument(name, label, blurb, schema.get("min", -1e9),
                                      schema.get("max", 1e9), default, flags)
    elif kind == "int":
        procedure.add_int_argument(name, label, blurb, int(schema.get("min", -2**31)),
                                   int(min(schema.get("max", 2**31 - 1), 2**31 - 1)), default,
                                   flags)
    elif kind == "bool":
        procedure.add_boolean_argument(name, label, blurb, default, flags)
    elif kind == "choice":
        choice = Gimp.Choice.new()
        for index, value in enumerate(schema["choices"]):
            choice.add(choice_nick(value), index, str(value), "")
        procedure.add_choice_argument(name, label, blurb, choice, choice_nick(default), flags)
    elif kind == "color":
        # GIMP 3.0.4 hands colour arguments to a new config as transparent black whatever
        # default is given here; run() puts the schema's default back (fill_colour_defaults).
        procedure.add_color_argument(name, label, blurb, False, Gegl.Color.new(default), flags)
    elif kind == "text":
        procedure.add_string_argument(name, label, blurb, default, flags)
    elif kind == "file":
        procedure.add_string_argument(name, label, blurb + " (a file path)", default, flags)
    elif kind == "image":
        procedure.add_drawable_argument(name, label, blurb + " (a layer of an open image)",
                                        True, flags)
    else:
        raise ValueError(f"unknown parameter kind {kind}")


def fill_colour_defaults(op, config):
    """Unset (fully transparent) colour arguments get the operation's default colour."""
    for schema in op["params"]:
        if schema["kind"] == "color":
            name = argument_name(schema["name"])
            value = config.get_property(name)
            if value is None or value.get_rgba()[3] == 0:
                config.set_property(name, Gegl.Color.new(schema["default"]))


def colour_hex(colour):
    data = colour.get_bytes(Babl.format("R'G'B' u8")).get_data()
    return "#" + bytes(data[:3]).hex()


def read_drawable(drawable, with_selection=True):
    """The drawable at its precision, perceptual sRGB, RGBA, plus the selection as an 8-bit
    mask in drawable coordinates (None when nothing is selected)."""
    image = drawable.get_image()
    family = image.get_precision().value_nick.split("-")[0].upper()
    sample, babl = SAMPLES[family]
    width, height = drawable.get_width(), drawable.get_height()
    rect = Gegl.Rectangle.new(0, 0, width, height)
    data = drawable.get_buffer().get(rect, 1.0, f"R'G'B'A {babl}", Gegl.AbyssPolicy.CLAMP)
    mask = None
    if with_selection and not Gimp.Selection.is_empty(image):
        _, x, y = drawable.get_offsets()
        selection = image.get_selection().get_buffer()
        mask = selection.get(Gegl.Rectangle.new(x, y, width, height), 1.0, "Y u8",
                             Gegl.AbyssPolicy.NONE)
        if not any(mask):
            raise ValueError("the selection does not touch this layer")
    _, x, y = drawable.get_offsets()
    return Source(Pixels(bytes(data), width, height, 4, sample),
                  None if mask is None else bytes(mask), (x, y), babl)


def write_layers(image, source, layers, babl):
    """Insert the result layers ((ResultLayer, Pixels) pairs, top first as the backend
    lists them) above `source`; a matte becomes the layer mask of a copy of the source."""
    parent = source.get_parent()
    position = image.get_item_position(source)
    formats = {1: "Y", 3: "R'G'B'", 4: "R'G'B'A"}
    added = []
    for layer, pixels in reversed(layers):    # bottom first, each inserted above the last
        rect = Gegl.Rectangle.new(0, 0, pixels.width, pixels.height)
        fmt = f"{formats[pixels.channels]} {babl}"
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
        added.append(node)
    return added


class Limner(Gimp.PlugIn):
    def do_query_procedures(self):
        try:
            operations = load_capabilities()["operations"]
        except (OSError, ValueError) as exc:
            print(f"limner: no capabilities.json beside the plug-in ({exc}); "
                  "run the Limner installer", file=sys.stderr)
            return []
        return [procedure_name(op["id"]) for op in operations if not op.get("hidden")]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        Gegl.init(None)      # colour defaults are Gegl.Color: without GEGL the query crashes
        op = next(o for o in load_capabilities()["operations"] if procedure_name(o["id"]) == name)
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, op)
        procedure.set_image_types("RGB*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(op["label"] + "…")
        procedure.add_menu_path("<Image>/Filters/Limner/")
        procedure.set_documentation(op["description"], op["description"], name)
        procedure.set_attribution("Limner", "Limner authors, GPL-3.0-or-later", "2026")
        for schema in op["params"]:
            add_argument(procedure, schema)
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, op):
        if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
            return self.fail(procedure, "select exactly one layer")
        fill_colour_defaults(op, config)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            GimpUi.init("limner")
            dialog = GimpUi.ProcedureDialog.new(procedure, config, op["label"])
            dialog.fill(None)
            accepted = dialog.run()
            dialog.destroy()
            if not accepted:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        source = drawables[0]
        try:
            params, inputs = self.parameters(op, config)
            request = read_drawable(source)
            layers = self.call_backend(op, params, inputs, request.pixels, request.mask,
                                       request.offset)
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user as a message
            return self.fail(procedure, str(exc))
        image.undo_group_start()
        try:
            write_layers(image, source, layers, request.babl)
        finally:
            image.undo_group_end()
        Gimp.displays_flush()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    @staticmethod
    def parameters(op, config):
        params, inputs = {}, {}
        for schema in op["params"]:
            value = config.get_property(argument_name(schema["name"]))
            kind = schema["kind"]
            if kind == "choice":
                value = {choice_nick(c): c for c in schema["choices"]}[value]
            elif kind == "color":
                value = colour_hex(value)
            elif kind in ("file", "text"):
                value = value or ""          # an unset string argument arrives as None
            elif kind == "image":
                if value is None:
                    continue
                inputs[schema["name"]] = read_drawable(value, with_selection=False).pixels
                continue
            params[schema["name"]] = value
        return params, inputs

    @staticmethod
    def call_backend(op, params, inputs, pixels, mask, offset):
        from limner import launcher, protocol
        from limner.client import BackendError, Client

        Gimp.progress_init(f"Limner: {op['label']}")

        def waiting(seconds):
            Gimp.progress_set_text(f"Starting the Limner backend… {seconds:.0f} s")
            Gimp.progress_pulse()

        info = launcher.ensure_running(HERE, on_wait=waiting)

        def progress(job, fraction, stage):
            Gimp.progress_set_text(f"Limner: {op['label']} — {stage}")
            Gimp.progress_update(fraction)

        try:
            with Client(f"ws://{protocol.DEFAULT_HOST}:{info['port']}", info["token"],
                        name=f"gimp {Gimp.version()}") as client:
                difference = schema_difference(load_capabilities(), client.capabilities)
                if difference:
                    Gimp.message("Limner: the backend's operations differ from the ones GIMP "
                                 f"registered ({difference}). Re-run the Limner installer "
                                 "(install/gimp.py) and restart GIMP to see them all.")
                return client.run(op["id"], params, pixels, mask=mask, offset=offset,
                                  inputs=inputs, on_progress=progress)
        except BackendError as exc:
            raise RuntimeError(f"Limner backend: {exc.message}") from None
        finally:
            Gimp.progress_end()

    @staticmethod
    def fail(procedure, message):
        Gimp.message(f"Limner: {message}")
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error.new_literal(GLib.quark_from_string("limner"),
                                                                  message, 0))


Gimp.main(Limner.__gtype__, sys.argv)
