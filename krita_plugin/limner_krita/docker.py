"""The Limner docker: the panel, the backend connection and Krita's documents, joined."""

from __future__ import annotations

import os

from krita import DockWidget, Krita

from . import kritaio
from .connection import Backend
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
        self.pending = None              # (document, source node, title) of the running job
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
        if self.pending is not None:
            return
        doc = Krita.instance().activeDocument()
        if doc is None or doc.activeNode() is None:
            self.panel.set_state("error", "open an image and select a paint layer")
            return
        op = self.panel.operation()
        if op is None:
            self.panel.set_state("error", "the backend has not described its operations yet")
            return
        source = doc.activeNode()
        try:
            request = kritaio.read_layer(doc, source)
            params, inputs = {}, {}
            for name, value in self.panel.values().items():
                if isinstance(value, tuple):      # another layer as an image parameter
                    node = doc.nodeByName(value[1])
                    if node is None:
                        raise kritaio.UnsupportedLayer(f"no layer named {value[1]!r}")
                    other = kritaio.read_layer(doc, node, with_selection=False)
                    inputs[name] = (other["image"], other["width"], other["height"],
                                    other["channels"], other["sample"])
                else:
                    params[name] = value
        except kritaio.UnsupportedLayer as exc:
            self.panel.set_state("error", str(exc))
            return
        request.update(op=op["id"], params=params, inputs=inputs)
        self.pending = (doc, source, self._title(op, params))
        self.panel.set_state("busy")
        self.backend.run_async(request)

    @staticmethod
    def _title(op: dict, params: dict) -> str:
        key = params.get("preset") or params.get("engine") or ""
        return f"Limner: {op['label']}" + (f" ({key})" if key else "")

    def _finished(self, request, layers):
        # Krita's node calls can spin a nested event loop: the job counts as pending until
        # its layers are in, so a second Run meanwhile is refused.
        doc, source, title = self.pending
        try:
            group = kritaio.apply_results(doc, source, title, layers)
        except Exception as exc:  # noqa: BLE001 - shown to the user, Krita stays up
            self.pending = None
            self.panel.set_state("error", f"could not add the layers: {exc}")
            return
        self.results.append(group)
        self.pending = None
        self.panel.set_progress(1.0, "done")
        self.panel.set_state("ready", f"added {len(layers)} layer(s) in '{title}'")

    def _failed(self, code, message):
        self.pending = None
        self.panel.set_state("error", message if code != "cancelled" else "cancelled")
