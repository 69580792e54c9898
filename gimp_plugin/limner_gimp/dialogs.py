# Limner for GIMP 3: the plug-in's dialogs.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""The procedure dialog's additions (only the chosen engine's controls; a preview beside
them, made off the GUI thread, live for an operation with a light), the models dialog,
and the offer to run the installer again. They read the procedure's config through
arguments.py and reach the backend through gimpio.connect, never through the PlugIn."""

import threading

from arguments import ARGUMENTS, parameters
from gi.repository import GdkPixbuf, Gimp, GimpUi, GLib, GObject, Gtk
from gimpio import connect, read_drawable
from names import argument_name
from previews import LatestOnly

#: the long side of a dialog's preview
PREVIEW_SIDE = 512


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
    engine = op.param("engine")
    if engine is None or all(not param.engines for param in op.params):
        return

    def update(*_):
        chosen = ARGUMENTS[engine.kind].read(config.get_property("engine"), engine)
        for param in op.params:
            widget = dialog.get_widget(argument_name(param.name), GObject.TYPE_NONE)
            if widget is not None:
                widget.set_visible(param.read_by(chosen))

    config.connect("notify::engine", update)
    update()


class DialogPreview:
    """A dialog's preview: the main result layer at PREVIEW_SIDE px, made again off the
    GUI thread as the parameters change; live for an operation with a light (relight,
    mood), on request for the others."""

    SHOWN = 400                        # pixels on screen, long side

    def __init__(self, dialog, config, op, drawable):
        self.config, self.op, self.client, self.drawable = config, op, None, drawable
        self.source = read_drawable(drawable, side=PREVIEW_SIDE)
        live = op.has_light
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
            self.previews.ask(parameters(self.op, self.config, self.drawable,
                                         side=PREVIEW_SIDE))

    def _run(self, settings):          # in the worker thread
        params, inputs = settings
        if self.client is None:
            self.client = connect()
        return self.client.run(self.op.id, params, self.source.pixels,
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
            self.store.append(self.row(model))
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
    def row(model):
        """A model's line (a limner.schema.ModelSpec): name, size, licence, engines, state."""
        return [model.name, f"{model.size_mb} MB", model.licence, ", ".join(model.engines),
                "here" if model.present else "not here"]

    def run(self):
        self.dialog.run()
        self.dialog.destroy()

    def _download(self, _button):
        _, rows = self.view.get_selection().get_selected_rows()
        if not rows:
            return
        name = self.models[rows[0].get_indices()[0]].name
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
