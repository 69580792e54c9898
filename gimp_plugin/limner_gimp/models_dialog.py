# Limner for GIMP 3: Filters > Limner > Models….
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""The models dialog: the backend's models, and their download (on the backend, with
progress), reached through gimpio.connect."""

import threading

from gi.repository import GimpUi, GLib, Gtk
from gimpio import connect


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
