"""The Limner docker: the panel, the backend connection and Krita's documents, joined."""

from __future__ import annotations

import time

from krita import DockWidget, Krita

from . import kritaio
from .canvas import CanvasPreview
from .connection import Backend
from .controller import Controller, Source, State, UnsupportedLayer
from .models_dialog import ModelsDialog
from .panel import LimnerPanel
from .preview import Previewer
from .qt import QtCore
from .studio_dialog import StudioDialog

DOCKER_ID = "limner_docker"
INSTANCES: list[LimnerDocker] = []   # for the Run/Cancel actions and the self-test


class LimnerDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Limner")
        self.panel = LimnerPanel(layers_provider=self._layer_names)
        self.setWidget(self.panel)
        self.backend = Backend(f"krita {Krita.instance().version()}", self)
        self.backend.state_changed.connect(self.panel.set_state)
        self.backend.not_installed.connect(self._not_installed)
        self.panel.install_clicked.connect(self.run_installer)
        self.installer = None            # the installer's command, when it can run again
        self.backend.capabilities_ready.connect(self._capabilities)
        self.previewer = Previewer(self.backend, self._preview_request,
                                   self._show_preview, self._no_preview, parent=self,
                                   warm=self._warm_request)
        self.panel.values_changed.connect(self.previewer.schedule)
        self.canvas = CanvasPreview(Krita.instance(), self.panel.set_canvas_preview)
        self._previewing = None         # (document, layer, its bounds) of the preview asked
        self.panel.canvas_toggled.connect(self._canvas_toggled)
        self.panel.live_preview.toggled.connect(lambda on: on or self.canvas.clear())
        # hidden (closed, or tabbed behind another docker): no preview on the canvas
        self.visibilityChanged.connect(lambda shown: shown or self.canvas.clear())
        self.panel.models_clicked.connect(self.show_models)
        self.models_dialog = None
        self.panel.studio_clicked.connect(lambda: self._dialog(StudioDialog))
        # (key, Source, when, {side: smaller Source}): the layer read small, reused
        self._preview_source = None
        self.last_run: tuple[str, dict] | None = None     # for "repeat last operation"
        self.backend.progress.connect(self.panel.set_progress)
        self.backend.finished.connect(self._finished)
        self.backend.failed.connect(self._failed)
        self.panel.run_clicked.connect(self.run)
        self.panel.cancel_clicked.connect(self.cancel)
        self.controller = Controller()   # the running job, with its (document, source node)
        self.results = []                # groups added, newest last (the self-test reads it)
        INSTANCES.append(self)
        self.backend.connect_async()

    def canvasChanged(self, canvas):
        self.panel.set_layers(self._layer_names())
        self._preview_source = None
        self.canvas.clear()

    def cancel(self) -> None:
        """Stop the running job, if any, and take the preview off the canvas (the document
        is as it was: the preview never was in it)."""
        if self.pending is not None:
            self.backend.cancel()
        self.previewer.stop()
        self.canvas.clear()

    def _canvas_toggled(self, on: bool) -> None:
        if on:
            self.panel.values_changed.emit()
        else:
            self.canvas.clear()

    def _layer_names(self) -> list[str]:
        doc = Krita.instance().activeDocument()
        if doc is None:
            return []
        names, stack = [], list(doc.rootNode().childNodes())
        while stack:
            node = stack.pop()
            if node.type() == "paintlayer":
                names.append(node.name())
            stack.extend(node.childNodes())
        return sorted(names)

    def _capabilities(self, capabilities):
        if self.panel.operations and \
                capabilities.operations == self.panel.capabilities.operations:
            self.panel.set_availability(capabilities)    # after a download: keep the values
        else:
            self.panel.set_capabilities(capabilities)
            self.panel.set_layers(self._layer_names())
        if self.models_dialog is not None:
            self.models_dialog.set_models(capabilities.models)

    def show_models(self, first=()):
        """The models dialog, with an engine's missing models first."""
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self.backend, [], parent=self)
        self.models_dialog.set_models(self.panel.capabilities.models, list(first))
        self.models_dialog.show()
        self.models_dialog.raise_()

    def _dialog(self, kind) -> None:
        """A settings dialog of this docker's backend, one at a time."""
        dialog = kind(self.backend, parent=self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def _warm_request(self):
        """While the light rests, the smaller preview a drag will ask for, once per layer
        and size: the backend works out that size's geometry before the hand moves, so
        the first drag does not wait a second for it."""
        op = self.panel.operation()
        if op is None or not op.has_light or self.panel.dragging or \
                not self.panel.canvas_preview.isChecked():
            return None
        try:
            return self._preview_request(warm=True)
        except UnsupportedLayer:
            return None

    def _preview_request(self, warm: bool = False):
        """The preview of the shown operation on the active layer, read small (and kept
        for a few seconds: a dragged light sends many previews of the same layer); with
        `warm`, the drag's smaller one if it was not asked for yet."""
        doc = Krita.instance().activeDocument()
        op = self.panel.operation()
        if doc is None or doc.activeNode() is None or op is None or self.pending:
            return None
        node = doc.activeNode()
        bounds = kritaio.bounds_of(node)
        side = Backend.PREVIEW_SIDE
        if self.panel.canvas_preview.isChecked():   # as large as the layer looks
            side = self.canvas.side_for(doc, bounds) or side
        selection = doc.selection()
        key = (doc.fileName(), node.uniqueId().toString(), side, selection and (
            selection.x(), selection.y(), selection.width(), selection.height()))
        cached = self._preview_source
        if cached is None or cached[0] != key or time.monotonic() - cached[2] > 3:
            cached = (key, kritaio.read_preview(doc, node, side), time.monotonic(), {})
        self._previewing = (doc, node, bounds)
        self._preview_source = (cached[0], cached[1], time.monotonic(), cached[3])
        source = cached[1]
        if (self.panel.dragging or warm) and self.panel.canvas_preview.isChecked():
            smaller = max(64, int(side * self.canvas.DRAG_SCALE))
            if smaller not in cached[3]:             # made once, from the read
                cached[3][smaller] = kritaio.shrink(source, smaller)
            elif warm:
                return None                          # asked for already
            source = cached[3][smaller]

        def read(name, over=None):
            if name is None:
                return source
            other = doc.nodeByName(name)
            if other is None:
                raise UnsupportedLayer(f"no layer named {name!r}")
            if over is not None:    # a hint over the layer: its rectangle, the preview's size
                pixels = kritaio.read_over(other, kritaio.bounds_of(node),
                                           (over.pixels.width, over.pixels.height))
                return None if pixels is None else Source(pixels)
            return kritaio.read_preview(doc, other, Backend.PREVIEW_SIDE)

        return self.controller.build(op, self.panel.values(), read)

    def _show_preview(self, pixels, provenance: dict) -> None:
        """A preview in the docker and, when asked for, over its layer on the canvas."""
        self.panel.show_preview(pixels, provenance)
        if self.panel.canvas_preview.isChecked() and self._previewing is not None \
                and self.pending is None and self.isVisible():
            from .qt import QtGui

            data = bytes(pixels.data)
            image = QtGui.QImage(data, pixels.width, pixels.height, pixels.width * 4,
                                 QtGui.QImage.Format.Format_RGBA8888)
            self.canvas.show(*self._previewing, image.copy(), opaque=min(data[3::4]) == 255)

    def _no_preview(self, message: str) -> None:
        self.panel.preview.setVisible(True)
        self.panel.preview.setText(f"No preview: {message}")

    def run_operation(self, op_id: str) -> None:
        """A shortcut's operation with the docker's settings for it."""
        self.panel.select_operation(op_id)
        self.run()

    def repeat_last(self) -> None:
        """The last operation again, with the same settings, on the active layer."""
        if self.last_run is None:
            self.panel.set_state(State.ERROR, "nothing to repeat yet")
            return
        self.run(*self.last_run)

    def run(self, op_id: str | None = None, values: dict | None = None):
        """Run the shown operation with the panel's values (or the given ones)."""
        if self.controller.pending is not None:
            return
        doc = Krita.instance().activeDocument()
        if doc is None or doc.activeNode() is None:
            self.panel.set_state(State.ERROR, "open an image and select a paint layer")
            return
        op = self.panel.operation() if op_id is None else \
            next((o for o in self.panel.operations if o.id == op_id), None)
        if op is None:
            self.panel.set_state(State.ERROR, "the backend has not described its operations yet")
            return
        values = self.panel.values() if values is None else values
        source = doc.activeNode()

        def read(name, over=None):
            if name is None:
                return kritaio.read_layer(doc, source)
            node = doc.nodeByName(name)
            if node is None:
                raise UnsupportedLayer(f"no layer named {name!r}")
            if over is not None:    # a hint painted over the source: read over its rectangle
                return Source(kritaio.read_over(node, (*over.offset, over.pixels.width,
                                                       over.pixels.height)))
            return kritaio.read_layer(doc, node, with_selection=False)

        try:
            request = self.controller.build(op, values, read)
        except UnsupportedLayer as exc:
            self.panel.set_state(State.ERROR, str(exc))
            return
        self.previewer.stop()
        self.last_run = (op.id, dict(values))
        self.controller.start(request, (doc, source))
        self.panel.set_state(State.BUSY)
        self.backend.run_async(request)

    @property
    def pending(self):
        return self.controller.pending

    def _finished(self, request, layers):
        # Krita's node calls can spin a nested event loop: the job counts as pending until
        # its layers are in, so a second Run meanwhile is refused.
        doc, source = self.controller.pending[1]
        try:
            group = kritaio.apply_results(doc, source, request.title, layers)
        except Exception as exc:  # noqa: BLE001 - shown to the user, Krita stays up
            self.controller.finish()
            self.panel.set_state(State.ERROR, f"could not add the layers: {exc}")
            return
        self.results.append(group)
        self.canvas.clear()             # the real layers are in: the preview has done its work
        # Krita makes an added group the active node once it has seen it: the source stays
        # the layer the docker works on
        QtCore.QTimer.singleShot(0, lambda: doc.setActiveNode(source))
        self.controller.finish()
        self.panel.set_progress(1.0, "done")
        self.panel.set_state(State.READY, f"added {len(layers)} layer(s) in '{request.title}'")

    def _failed(self, code, message):
        self.controller.finish()
        self.canvas.clear()
        self.panel.set_state(State.ERROR, message if code != "cancelled" else "cancelled")

    def _not_installed(self, message, installer):
        self.installer = installer
        self.panel.set_not_installed(message, installer is not None)

    def run_installer(self):
        if self.installer is not None:
            self.backend.install_async(self.installer)
