#!/usr/bin/env python3
# Limner for GIMP 3: AI portrait retouching through the local Limner backend.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""One image procedure per backend operation (Filters > Limner > …), registered from the
copy of the backend's capabilities that the installer writes beside this file, so a new
operation or parameter needs no change here. Each procedure reads the drawable (at the
image's own precision, perceptual sRGB) and the selection, runs the operation on the
backend (starting it when none runs), and inserts the result layers above the source in
one undo group. Every procedure also runs non-interactively with its arguments. When the
backend's operations differ from the installed copy, it says to re-run the installer.
The dialogs show only the chosen engine's controls and a preview (live for relight, on
request for the rest); Filters > Limner > Models… lists and downloads the models."""

import json
import os
import sys
import threading
from dataclasses import dataclass

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import Babl, GdkPixbuf, Gegl, Gimp, GimpUi, GLib, GObject, Gtk

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "vendor")]   # names.py; the client, websockets

from limner.protocol import Pixels  # noqa: E402
from names import argument_name, choice_nick, procedure_name, schema_difference  # noqa: E402
from previews import LatestOnly  # noqa: E402

MODELS_PROCEDURE = "plug-in-limner-models"
#: the long side of a dialog's preview
PREVIEW_SIDE = 512

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
    elif kind == "file":                # GIMP's own file chooser in the dialog
        procedure.add_file_argument(name, label, blurb, Gimp.FileChooserAction.OPEN, True,
                                    None, flags)
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


def read_drawable(drawable, with_selection=True, side=None):
    """The drawable at its precision, perceptual sRGB, RGBA, plus the selection as an 8-bit
    mask in drawable coordinates (None when nothing is selected). With `side`: scaled down
    by GEGL to that long side, 8-bit (a preview's)."""
    image = drawable.get_image()
    family = image.get_precision().value_nick.split("-")[0].upper()
    sample, babl = SAMPLES[family] if side is None else ("u8", "u8")
    full_width, full_height = drawable.get_width(), drawable.get_height()
    scale = 1.0 if side is None else min(1.0, side / max(full_width, full_height))
    width, height = max(1, round(full_width * scale)), max(1, round(full_height * scale))
    rect = Gegl.Rectangle.new(0, 0, width, height)
    data = drawable.get_buffer().get(rect, scale, f"R'G'B'A {babl}", Gegl.AbyssPolicy.CLAMP)
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
        data = hint.get_buffer().get(rect, scale, "R'G'B'A u8", Gegl.AbyssPolicy.NONE)
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


def connect(on_wait=None):
    """A client of the running backend (started when none runs; `on_wait(seconds)`
    meanwhile)."""
    from limner import launcher
    from limner.client import Client

    return Client.from_info(launcher.ensure_running("gimp", on_wait=on_wait),
                            name=f"gimp {Gimp.version()}")


def offer_installer(message, installer):
    """No backend, and the installer that made the last one is still there: offer to run
    it again (off GIMP's GUI thread; its output goes to installer.log)."""
    from limner import launcher

    GimpUi.init("limner")
    dialog = Gtk.MessageDialog(message_type=Gtk.MessageType.QUESTION, text=message,
                               title="Limner")
    dialog.add_buttons("Close", Gtk.ResponseType.CLOSE, "Run the installer", Gtk.ResponseType.OK)
    if dialog.run() == Gtk.ResponseType.OK:
        launcher.run_installer(installer)
        Gimp.message("Limner: the installer is running (its output goes to installer.log in "
                     "Limner's state folder); run the filter again when it is done.")
    dialog.destroy()


def show_engine_controls(dialog, config, op):
    """Hide the controls the chosen engine does not read, now and whenever it changes."""
    limited = [schema for schema in op["params"] if schema.get("engines")]
    engine = next((schema for schema in op["params"] if schema["name"] == "engine"), None)
    if not limited or engine is None:
        return

    def update(*_):
        chosen = {choice_nick(c): c for c in engine["choices"]}[config.get_property("engine")]
        for schema in limited:
            widget = dialog.get_widget(argument_name(schema["name"]), GObject.TYPE_NONE)
            if widget is not None:
                widget.set_visible(chosen in schema["engines"])

    config.connect("notify::engine", update)
    update()


def follow_presets(config, op):
    """Picking a choice that implies other values (a lighting setup, a mood's recipe) puts
    them in, each as its argument's kind wants it."""
    kinds = {schema["name"]: schema["kind"] for schema in op["params"]}

    def argument_value(name, value):
        if kinds.get(name) == "choice":
            return choice_nick(value)
        if kinds.get(name) == "color":
            return Gegl.Color.new(value)
        return value

    for schema in op["params"]:
        if not schema.get("presets"):
            continue

        def apply(*_, schema=schema):
            chosen = {choice_nick(c): c for c in schema["choices"]}[
                config.get_property(argument_name(schema["name"]))]
            for name, value in schema["presets"].get(chosen, {}).items():
                if name in kinds:
                    config.set_property(argument_name(name), argument_value(name, value))

        config.connect(f"notify::{argument_name(schema['name'])}", apply)


class DialogPreview:
    """A dialog's preview: the main result layer at PREVIEW_SIDE px, made again off the
    GUI thread as the parameters change; live for relight, on request for the others."""

    SHOWN = 400                        # pixels on screen, long side

    def __init__(self, dialog, config, op, drawable):
        self.config, self.op, self.client, self.drawable = config, op, None, drawable
        self.source = read_drawable(drawable, side=PREVIEW_SIDE)
        live = any(schema["name"] == "azimuth" for schema in op["params"])
        self.toggle = Gtk.CheckButton.new_with_label("Preview")
        self.toggle.set_active(live)
        self.picture = Gtk.Image()
        self.status = Gtk.Label()
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        for widget in (self.toggle, self.picture, self.status):
            box.pack_start(widget, False, False, 0)
        self.status.set_line_wrap(True)
        self.status.set_max_width_chars(40)
        # beside the controls, not under them: relight's are taller than most screens
        area = dialog.get_content_area()
        controls = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
        for child in area.get_children():
            area.remove(child)
            controls.pack_start(child, True, True, 0)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
        row.pack_start(controls, True, True, 0)
        row.pack_start(box, False, False, 0)
        area.pack_start(row, True, True, 0)
        row.show_all()
        self.previews = LatestOnly(self._run, lambda result, error:
                                   GLib.idle_add(self._show, result, error))
        config.connect("notify", self._changed)
        self.toggle.connect("toggled", self._changed)
        self._changed()

    def _changed(self, *_):
        if self.toggle.get_active():
            self.status.set_text("Working…")
            self.previews.ask(Limner.parameters(self.op, self.config, self.drawable,
                                                side=PREVIEW_SIDE))

    def _run(self, settings):          # in the worker thread
        params, inputs = settings
        if self.client is None:
            self.client = connect()
        return self.client.run(self.op["id"], params, self.source.pixels,
                               mask=self.source.mask, inputs=inputs,
                               preview_side=PREVIEW_SIDE)

    def _show(self, result, error):    # in GTK's main loop
        if error is not None:
            self.status.set_text(f"No preview: {getattr(error, 'message', error)}")
            return False
        pixels = result[0][1]
        if pixels.channels == 4 and pixels.sample == "u8":
            picture = GdkPixbuf.Pixbuf.new_from_bytes(
                GLib.Bytes.new(bytes(pixels.data)), GdkPixbuf.Colorspace.RGB, True, 8,
                pixels.width, pixels.height, pixels.width * 4)
            scale = min(1.0, self.SHOWN / max(pixels.width, pixels.height))
            self.picture.set_from_pixbuf(picture.scale_simple(
                max(1, round(pixels.width * scale)), max(1, round(pixels.height * scale)),
                GdkPixbuf.InterpType.BILINEAR))
        self.status.set_text("")
        return False

    def close(self):
        if self.client is not None:
            self.client.close()


class ModelsDialog:
    """Filters > Limner > Models…: the backend's models (size, licence, engines, here or
    not) with Download and a progress bar; the download runs on the backend."""

    COLUMNS = ("Model", "Size", "Licence", "Used by", "State")

    def __init__(self, models):
        self.models = models
        self.dialog = GimpUi.Dialog(title="Limner models", role="limner-models")
        self.dialog.add_button("_Close", Gtk.ResponseType.CLOSE)
        self.store = Gtk.ListStore(*[str] * len(self.COLUMNS))
        for model in models:
            self.store.append(self._row(model))
        self.view = Gtk.TreeView(model=self.store)
        for index, title in enumerate(self.COLUMNS):
            self.view.append_column(Gtk.TreeViewColumn(title, Gtk.CellRendererText(),
                                                       text=index))
        self.download = Gtk.Button.new_with_label("Download")
        self.download.connect("clicked", self._download)
        self.progress = Gtk.ProgressBar(show_text=True)
        area = self.dialog.get_content_area()
        area.set_spacing(6)
        for widget in (self.view, self.download, self.progress):
            area.pack_start(widget, False, False, 0)
        self.dialog.set_default_size(720, 360)
        self.dialog.show_all()

    @staticmethod
    def _row(model):
        return [model["name"], f"{model['size_mb']} MB", model["licence"],
                ", ".join(model["engines"]), "here" if model["present"] else "not here"]

    def run(self):
        self.dialog.run()
        self.dialog.destroy()

    def _download(self, _button):
        _, rows = self.view.get_selection().get_selected_rows()
        if not rows:
            return
        name = self.models[rows[0].get_indices()[0]]["name"]
        self.download.set_sensitive(False)

        def progress(_job, fraction, stage):
            GLib.idle_add(self._progress, fraction, stage)

        def work():
            try:
                with connect() as client:
                    path = client.pull(name, progress)
                GLib.idle_add(self._done, rows[0], f"{name} is here: {path}")
            except Exception as exc:  # noqa: BLE001 - shown in the dialog
                GLib.idle_add(self._done, None, str(getattr(exc, "message", exc)))

        threading.Thread(target=work, daemon=True).start()

    def _progress(self, fraction, stage):
        self.progress.set_fraction(fraction)
        self.progress.set_text(stage)
        return False

    def _done(self, row, text):
        if row is not None:
            self.store[row][4] = "here"
        self.progress.set_text(text)
        self.download.set_sensitive(True)
        return False


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
        return [procedure_name(op["id"]) for op in operations if not op.get("hidden")] + \
            [MODELS_PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        Gegl.init(None)      # colour defaults are Gegl.Color: without GEGL the query crashes
        if name == MODELS_PROCEDURE:
            return self.models_procedure(name)
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
            try:
                preview = DialogPreview(dialog, config, op, drawables[0])
            except Exception as exc:  # noqa: BLE001 - no preview; the dialog still works
                preview = None
                print(f"limner: no preview: {exc}", file=sys.stderr)
            show_engine_controls(dialog, config, op)      # after the preview's show_all
            follow_presets(config, op)
            accepted = dialog.run()
            dialog.destroy()
            if preview is not None:
                preview.close()
            if not accepted:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        source = drawables[0]
        from limner.launcher import NotInstalled

        try:
            params, inputs = self.parameters(op, config, source)
            request = read_drawable(source)
            layers = self.call_backend(op, params, inputs, request.pixels, request.mask,
                                       request.offset)
        except NotInstalled as exc:
            if run_mode == Gimp.RunMode.INTERACTIVE and exc.installer:
                offer_installer(str(exc), exc.installer)
            return self.fail(procedure, str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user as a message
            return self.fail(procedure, str(exc))
        image.undo_group_start()
        try:
            write_layers(image, source, layers, request.babl)
            mark_ai_edited(image, layers)
        finally:
            image.undo_group_end()
        Gimp.displays_flush()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    def models_procedure(self, name):
        procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_models,
                                       None)
        procedure.set_menu_label("Models…")
        procedure.add_menu_path("<Image>/Filters/Limner/")
        procedure.set_documentation("The models of Limner's high-quality engines: list and "
                                    "download", "Non-interactively: model names one to "
                                    "download, or is empty to list them.", name)
        procedure.set_attribution("Limner", "Limner authors, GPL-3.0-or-later", "2026")
        procedure.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                    Gimp.RunMode.NONINTERACTIVE, GObject.ParamFlags.READWRITE)
        procedure.add_string_argument("model", "Model", "A model to download ('' lists "
                                      "them)", "", GObject.ParamFlags.READWRITE)
        return procedure

    def run_models(self, procedure, config, _data):
        try:
            with connect() as client:
                models = client.capabilities["models"]
                if config.get_property("run-mode") == Gimp.RunMode.INTERACTIVE:
                    GimpUi.init("limner")
                    ModelsDialog(models).run()
                elif config.get_property("model"):
                    name = config.get_property("model")
                    Gimp.progress_init(f"Limner: downloading {name}")

                    def progress(_job, fraction, stage):
                        Gimp.progress_set_text(stage)
                        Gimp.progress_update(fraction)

                    Gimp.message(f"Limner: {name} is here: {client.pull(name, progress)}")
                else:
                    Gimp.message("Limner models:\n" + "\n".join(
                        "  ".join(ModelsDialog._row(model)) for model in models))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user as a message
            return self.fail(procedure, str(getattr(exc, "message", exc)))
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    @staticmethod
    def parameters(op, config, source, side=None):
        """The backend's parameters from the procedure's config, and the layers image
        parameters name (a hint read over `source`, the drawable worked on)."""
        params, inputs = {}, {}
        for schema in op["params"]:
            value = config.get_property(argument_name(schema["name"]))
            kind = schema["kind"]
            if kind == "choice":
                value = {choice_nick(c): c for c in schema["choices"]}[value]
            elif kind == "color":
                value = colour_hex(value)
            elif kind == "file":
                value = (value.get_path() or "") if value is not None else ""
            elif kind == "text":
                value = value or ""          # an unset string argument arrives as None
            elif kind == "image":
                if value is None:
                    continue
                inputs[schema["name"]] = read_over(value, source, side) \
                    if schema.get("over_layer") else \
                    read_drawable(value, with_selection=False, side=side).pixels
                continue
            params[schema["name"]] = value
        return params, inputs

    @staticmethod
    def call_backend(op, params, inputs, pixels, mask, offset):
        from limner.client import BackendError

        Gimp.progress_init(f"Limner: {op['label']}")

        def waiting(seconds):
            Gimp.progress_set_text(f"Starting the Limner backend… {seconds:.0f} s")
            Gimp.progress_pulse()

        def progress(job, fraction, stage):
            Gimp.progress_set_text(f"Limner: {op['label']} — {stage}")
            Gimp.progress_update(fraction)

        try:
            with connect(waiting) as client:
                difference = schema_difference(load_capabilities(), client.capabilities)
                if difference:
                    Gimp.message("Limner: the backend's operations differ from the ones GIMP "
                                 f"registered ({difference}). Re-run the Limner installer "
                                 "(install/setup.py --gimp) and restart GIMP to see them all.")
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
