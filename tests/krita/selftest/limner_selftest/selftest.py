"""A self-test inside the real Krita GUI, run when LIMNER_KRITA_SELFTEST names a JSON spec:
open a portrait, select a region, press the docker's Run button, wait for the layers, save
a screenshot of the window and what was found, and quit. Used by the end-to-end tests.

Spec: {"image": path, "selection": [x, y, w, h], "op": id, "params": {...},
       "screenshot": path, "findings": path}
"""

from __future__ import annotations

import json
import os
import time

from krita import Krita, Selection
from limner_krita.qt import QtCore, QtWidgets

_RUNNING: list[dict] = []   # holds the timer: a timer only its own callback refers to is collected


def schedule() -> None:
    spec = json.loads(open(os.environ["LIMNER_KRITA_SELFTEST"]).read())
    state = {"step": "start", "started": time.monotonic(), "spec": spec}
    timer = QtCore.QTimer()
    timer.setInterval(200)
    timer.timeout.connect(lambda: _tick(timer, state))
    state["timer"] = timer
    _RUNNING.append(state)
    timer.start()


def _finish(state, findings) -> None:
    state["timer"].stop()
    with open(state["spec"]["findings"], "w") as fh:
        json.dump(findings, fh, indent=1)
    app = Krita.instance()
    for doc in app.documents():
        doc.setModified(False)
    QtCore.QTimer.singleShot(500, lambda: app.action("file_quit").trigger())


def _tick(timer, state) -> None:
    try:
        _step(state)
    except Exception as exc:  # noqa: BLE001 - reported in the findings, Krita quits
        import traceback
        _finish(state, {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
    if time.monotonic() - state["started"] > 150 and timer.isActive():
        _finish(state, {"error": f"timed out at step {state['step']}"})


def _step(state) -> None:
    from limner_krita.controller import State
    from limner_krita.docker import INSTANCES

    app, spec = Krita.instance(), state["spec"]
    window = app.activeWindow()
    if state["step"] == "start":
        if window is None or not INSTANCES:
            return
        dock = window.qwindow().findChild(QtWidgets.QDockWidget, "limner_docker")
        dock.setVisible(True)
        doc = app.openDocument(spec["image"])
        window.addView(doc)
        state.update(step="wait-ready", doc=doc)
    elif state["step"] == "wait-ready":
        docker = INSTANCES[0]
        if docker.panel.state is State.ERROR and not docker.panel.operations:
            raise RuntimeError(docker.panel.status.text())
        if docker.panel.state is not State.READY:
            return
        doc = state["doc"]
        source = doc.topLevelNodes()[0]
        doc.setActiveNode(source)
        state["source"] = source
        state["before"] = bytes(source.pixelData(0, 0, doc.width(), doc.height()))
        selection = Selection()
        selection.select(*spec["selection"], 255)
        doc.setSelection(selection)
        docker.panel.select_operation(spec["op"])
        for name, value in spec["params"].items():
            widget = docker.panel.controls[spec["op"]][name].widget
            widget.setValue(value) if hasattr(widget, "setValue") else widget.setCurrentText(value)
        events = state.setdefault("events", [])
        docker.backend.state_changed.connect(lambda st, msg: events.append(f"state {st} {msg}"))
        docker.backend.failed.connect(lambda code, msg: events.append(f"failed {code} {msg}"))
        docker.backend.finished.connect(lambda req, layers: events.append("finished"))
        docker.canvasChanged(None)
        docker.panel.run_button.click()
        events.append(f"clicked; pending={docker.pending is not None}; dockers={len(INSTANCES)}")
        state["step"] = "wait-result"
    elif state["step"] == "wait-result":
        docker = INSTANCES[0]
        if docker.pending is not None:
            return
        if not docker.results:
            raise RuntimeError(f"no result: {docker.panel.status.text()}; "
                               f"events: {state.get('events')}")
        doc, source = state["doc"], state["source"]
        group = docker.results[-1]
        QtWidgets.QApplication.processEvents()
        window.qwindow().grab().save(spec["screenshot"])
        _finish(state, {
            "status": docker.panel.status.text(), "progress": docker.panel.progress.value(),
            "operations": [docker.panel.operation_box.itemText(i)
                           for i in range(docker.panel.operation_box.count())],
            "top_level": [n.name() for n in doc.topLevelNodes()],
            "group": group.name(),
            "layers": [{"name": n.name(), "visible": n.visible(), "blend": n.blendingMode()}
                       for n in reversed(group.childNodes())],
            "source_unchanged": bytes(source.pixelData(0, 0, doc.width(), doc.height()))
            == state["before"]})
