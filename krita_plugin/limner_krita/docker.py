"""The Limner docker: the panel, the backend connection and Krita's documents, joined."""

from __future__ import annotations

import os

from krita import DockWidget, Krita

from . import kritaio
from .connection import Backend
from .controller import Controller, State, UnsupportedLayer
from .panel import LimnerPanel

DOCKER_ID = "limner_docker"
PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
INSTANCES: list[LimnerDocker] = []   # for the Run/Cancel actions and the self-test


class LimnerDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Limner")
        self.panel = LimnerPanel(layers_provider=self._layer_names)
        self.setWidget(self.panel)
        self.backend = Backend(PLUGIN_DIR, f"krita {Krita.instance().version()}", self)
        self.backend.state_changed.connect(self.panel.set_state)
        self.backend.capabilities_ready.connect(self._capabilities)
        self.backend.progress.connect(self.panel.set_progress)
        self.backend.finished.connect(self._finished)
        self.backend.failed.connect(self._failed)
        self.panel.run_clicked.connect(self.run)
        self.panel.cancel_clicked.connect(self.backend.cancel)
        self.controller = Controller()   # the running job, with its (document, source node)
        self.results = []                # groups added, newest last (the self-test reads it)
        INSTANCES.append(self)
        self.backend.connect_async()

    def canvasChanged(self, canvas):
        self.panel.set_layers(self._layer_names())

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
        self.panel.set_capabilities(capabilities)
        self.panel.set_layers(self._layer_names())

    def run(self):
        if self.controller.pending is not None:
            return
        doc = Krita.instance().activeDocument()
        if doc is None or doc.activeNode() is None:
            self.panel.set_state(State.ERROR, "open an image and select a paint layer")
            return
        op = self.panel.operation()
        if op is None:
            self.panel.set_state(State.ERROR, "the backend has not described its operations yet")
            return
        source = doc.activeNode()

        def read(name):
            if name is None:
                return kritaio.read_layer(doc, source)
            node = doc.nodeByName(name)
            if node is None:
                raise UnsupportedLayer(f"no layer named {name!r}")
            return kritaio.read_layer(doc, node, with_selection=False)

        try:
            request = self.controller.build(op, self.panel.values(), read)
        except UnsupportedLayer as exc:
            self.panel.set_state(State.ERROR, str(exc))
            return
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
        self.controller.finish()
        self.panel.set_progress(1.0, "done")
        self.panel.set_state(State.READY, f"added {len(layers)} layer(s) in '{request.title}'")

    def _failed(self, code, message):
        self.controller.finish()
        self.panel.set_state(State.ERROR, message if code != "cancelled" else "cancelled")
