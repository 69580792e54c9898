"""A self-test inside the real Krita GUI, run when LIMNER_KRITA_SELFTEST names a JSON spec:
open a portrait, select a region, press the docker's Run button, wait for the layers, save
a screenshot of the window and what was found, and quit. Used by the end-to-end tests.

Then, with "light" in the spec, it drags the light widget with real mouse events, waits
for the live previews, switches the relight engine, opens the models dialog, and keeps
screenshots of the docker and the dialog.

Last, with "mood" in the spec, it picks a mood and changes one of its values in the
docker's controls (edits, in order), runs it, and reports the controls' values (report),
the layers and the provenance kept in the document.

With "responsiveness" instead (tests/benchmarks/bench_editor.py), after the first run it
runs each of its operations on the whole layer from the docker while a 16 ms timer ticks
in Krita's GUI thread, and reports how late the ticks came: while the backend computed,
and while the docker added the layers.

Then, with "canvas", the preview on the canvas: shown over the layer, following a change
of the light, gone when another layer is made active and back with the source, gone on
Cancel with the document and its undo history as they were; Run
with the preview shown against a plain Run (the same layers, one step in the history).

With "canvas_rate" instead (bench_editor.py --canvas), after the first run it drags the
light over the whole layer with the preview on the canvas and reports how many pictures
the canvas showed per second, then presses Run on release and reports how long the
full-resolution layers took to come.

Spec: {"image": path, "selection": [x, y, w, h], "op": id, "params": {...},
       "screenshot": path, "findings": path,
       "light": {"docker_shot": path, "models_shot": path},
       "mood": {"edits": [[name, value], ...], "report": [name, ...]},
       "responsiveness": {"ops": [[id, {...}], ...]},
       "canvas": {"shot": path, "canvas_grab": path, "lights": [[azimuth, elevation], ...]},
       "canvas_rate": {"moves": n, "shot": path}}
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
    if time.monotonic() - state["started"] > 200 and timer.isActive():
        from limner_krita.docker import INSTANCES

        seen = {}
        if INSTANCES:
            previewer = INSTANCES[0].previewer
            seen = {"previews": [previewer.asked, previewer.sent, previewer.shown,
                                 previewer.ended], "preview": INSTANCES[0].panel.preview.text(),
                    "status": INSTANCES[0].panel.status.text()}
        _finish(state, {"error": f"timed out at step {state['step']}", "seen": seen})


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
        state["findings"] = {
            "status": docker.panel.status.text(), "progress": docker.panel.progress.value(),
            "operations": [docker.panel.operation_box.itemText(i)
                           for i in range(docker.panel.operation_box.count())],
            "top_level": [n.name() for n in doc.topLevelNodes()],
            "group": group.name(),
            "layers": [{"name": n.name(), "visible": n.visible(), "blend": n.blendingMode()}
                       for n in reversed(group.childNodes())],
            "source_unchanged": bytes(source.pixelData(0, 0, doc.width(), doc.height()))
            == state["before"]}
        if "responsiveness" in spec:
            state.update(step="respond", queue=list(spec["responsiveness"]["ops"]))
            state["findings"]["responsiveness"] = []
            return
        if "canvas_rate" in spec:
            state["step"] = "rate"
            return
        if "light" not in spec:
            _finish(state, state["findings"])
            return
        state["step"] = "warm"
    elif state["step"] == "respond":
        _respond(state)
    elif state["step"].startswith("rate"):
        _canvas_rate(state)
    elif state["step"] == "warm":         # relight shown: its first preview works out the
        docker = INSTANCES[0]             # geometry, as when a user opens it
        docker.setFloating(True)          # room for the light widget and the preview
        docker.resize(340, 980)
        docker.panel.select_operation("relight")
        docker.panel.live_preview.setChecked(True)
        docker.previewer.schedule()       # relight was already shown: no change to say so
        state["step"] = "wait-warm"
    elif state["step"] == "wait-warm":
        previewer = INSTANCES[0].previewer
        if previewer.shown and previewer.in_flight is None and not previewer.wanted:
            state["step"] = "drag"
    elif state["step"] == "drag":
        _drag_light(state)
        state["step"] = "wait-previews"
    elif state["step"] == "wait-previews":
        docker = INSTANCES[0]
        previewer = docker.previewer
        if previewer.in_flight is not None or previewer.wanted or previewer.timer.isActive():
            return
        _after_drag(state)
        state["step"] = "models"
    elif state["step"] == "models":
        docker = INSTANCES[0]
        docker.panel.models_button.click()
        QtWidgets.QApplication.processEvents()
        dialog = docker.models_dialog
        table = dialog.table
        state["findings"]["models"] = [table.item(row, 0).text()
                                       for row in range(table.rowCount())]
        dialog.grab().save(spec["light"]["models_shot"])
        dialog.close()
        if "mood" not in spec:
            _finish(state, state["findings"])
            return
        state["step"] = "mood"
    elif state["step"] == "mood":          # a mood picked, one of its values changed, Run
        docker = INSTANCES[0]
        state["doc"].setActiveNode(state["source"])
        docker.panel.select_operation("mood")
        controls = docker.panel.controls["mood"]
        for name, value in spec["mood"]["edits"]:
            widget = controls[name].widget
            widget.setValue(value) if hasattr(widget, "setValue") else widget.setCurrentText(value)
        state["findings"]["mood_controls"] = {name: controls[name].value()
                                              for name in spec["mood"]["report"]}
        state["results_before"] = len(docker.results)
        docker.panel.run_button.click()
        state["step"] = "wait-mood"
    elif state["step"] == "wait-mood":
        docker = INSTANCES[0]
        if docker.pending is not None:
            return
        if len(docker.results) == state["results_before"]:
            raise RuntimeError(f"no mood result: {docker.panel.status.text()}")
        group, doc = docker.results[-1], state["doc"]
        annotation = bytes(doc.annotation(f"limner/{group.name()}")) \
            if hasattr(doc, "annotation") else b""
        state["findings"]["mood"] = {
            "group": group.name(),
            "layers": [n.name() for n in reversed(group.childNodes())],
            "provenance": json.loads(annotation.decode()) if annotation else None}
        if "canvas" not in spec:
            _finish(state, state["findings"])
            return
        state["step"] = "canvas"
    elif state["step"].startswith("canvas"):
        _canvas(state, window)


def _send_mouse(widget, kind, x, y, buttons):
    from limner_krita.qt import QtCore, QtGui

    event = QtGui.QMouseEvent(kind, QtCore.QPointF(x, y), QtCore.Qt.MouseButton.LeftButton,
                              buttons, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(widget, event)


def _drag_light(state, moves: int = 60) -> None:
    """The key dragged from the image's left, over the top, to its right, as a hand
    would: 60 moves 15 ms apart, the GUI's events processed between them."""
    from limner_krita.docker import INSTANCES
    from limner_krita.qt import QtCore

    docker = INSTANCES[0]
    panel, previewer = docker.panel, docker.previewer
    before = (previewer.asked, previewer.sent, previewer.shown)
    before_ended = sum(previewer.ended.values())
    sphere = panel.spheres["relight"]
    controls = panel.controls["relight"]
    pictures = state["pictures"] = []
    docker.backend.preview_ready.connect(
        lambda job, pixels, provenance: pictures.append(hash(bytes(pixels.data))))
    cx, cy, r = sphere._disc()
    start = sphere.marker_position("")
    left = QtCore.Qt.MouseButton.LeftButton
    _send_mouse(sphere, QtCore.QEvent.Type.MouseButtonPress, start.x(), start.y(), left)
    angles, started = [], time.monotonic()
    for step in range(moves):
        t = step / (moves - 1)
        x, y = cx + (-0.8 + 1.6 * t) * r, cy - (0.3 + 0.3 * (1 - abs(2 * t - 1))) * r
        _send_mouse(sphere, QtCore.QEvent.Type.MouseMove, x, y, left)
        angles.append((controls["azimuth"].value(), controls["elevation"].value()))
        end = time.monotonic() + 0.015
        while time.monotonic() < end:
            QtWidgets.QApplication.processEvents()
    _send_mouse(sphere, QtCore.QEvent.Type.MouseButtonRelease, x, y,
                QtCore.Qt.MouseButton.NoButton)
    state["drag"] = {"moves": moves, "seconds": time.monotonic() - started,
                     "angles": [angles[0], angles[moves // 2], angles[-1]],
                     "shown_during": previewer.shown - before[2], "before": before,
                     "before_ended": before_ended}


def _after_drag(state) -> None:
    from limner_krita.docker import INSTANCES

    docker = INSTANCES[0]
    panel, previewer = docker.panel, docker.previewer
    controls = panel.controls["relight"]
    pixmap = panel.preview.pixmap()
    findings = state["findings"]
    asked, sent, shown = (n - m for n, m in zip((previewer.asked, previewer.sent,
                                                 previewer.shown), state["drag"]["before"]))
    findings["drag"] = dict(state["drag"], asked=asked, sent=sent, shown=shown,
                            ended=dict(previewer.ended),
                            last_shown_is_last_sent=previewer.last_shown == previewer.last_sent,
                            setup=controls["setup"].value(),
                            distinct_pictures=len(set(state["pictures"])),
                            preview_size=[pixmap.width(), pixmap.height()] if pixmap else None,
                            preview_text=panel.preview.text())
    QtWidgets.QApplication.processEvents()
    docker.grab().save(state["spec"]["light"]["docker_shot"])
    visible = {}
    for engine in ("ic-light", "geometric"):
        controls["engine"].widget.setCurrentText(engine)
        visible[engine] = sorted(name for name, c in controls.items()
                                 if not c.widget.isHidden())
    findings["controls"] = visible


def _respond(state) -> None:
    """The next operation of the responsiveness spec (whole layer, from the docker), with
    a 16 ms precise timer measuring the GUI thread; when it is done, its figures."""
    from limner_krita.docker import INSTANCES

    docker = INSTANCES[0]
    probe = state.get("probe")
    if probe is not None:
        if docker.pending is not None:
            return
        probe["timer"].stop()
        ticks, finished = probe["ticks"], probe["finished"] or time.monotonic()

        def late(during):
            values = sorted(lateness for at, lateness in ticks if during(at))
            if not values:
                return {"ticks": 0}
            return {"ticks": len(values), "median_ms": round(values[len(values) // 2], 1),
                    "p99_ms": round(values[min(len(values) - 1, int(0.99 * len(values)))], 1),
                    "max_ms": round(values[-1], 1),
                    "over_50_ms": sum(value > 50 for value in values)}

        state["findings"]["responsiveness"].append({
            "op": probe["op"], "seconds": round(time.monotonic() - probe["started"], 2),
            "computing": late(lambda at: at < finished),
            "adding_layers": late(lambda at: at >= finished),
            "status": docker.panel.status.text()})
        state["probe"] = None
    if not state["queue"]:
        _finish(state, state["findings"])
        return
    op, params = state["queue"].pop(0)
    doc = state["doc"]
    doc.setActiveNode(state["source"])
    whole = Selection()
    whole.select(0, 0, doc.width(), doc.height(), 255)
    doc.setSelection(whole)                       # the whole layer
    docker.panel.select_operation(op)
    for name, value in params.items():
        widget = docker.panel.controls[op][name].widget
        widget.setValue(value) if hasattr(widget, "setValue") else widget.setCurrentText(value)
    probe = state["probe"] = {"op": op, "ticks": [], "finished": None,
                              "started": time.monotonic()}
    timer = QtCore.QTimer()
    timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
    timer.setInterval(16)
    probe["last"] = time.monotonic()

    def tick():
        now = time.monotonic()
        probe["ticks"].append((now, max(0.0, (now - probe["last"] - 0.016) * 1000)))
        probe["last"] = now

    def finished(*_):
        if probe["finished"] is None:
            probe["finished"] = time.monotonic()

    timer.timeout.connect(tick)
    docker.backend.finished.connect(finished)
    probe["timer"] = timer
    timer.start()
    docker.panel.run_button.click()


def _history(window) -> list[str]:
    """The document's undo history, as Krita's History docker lists it."""
    for dock in window.qwindow().findChildren(QtWidgets.QDockWidget):
        if dock.objectName() == "History":
            dock.setVisible(True)
            view = dock.findChild(QtWidgets.QAbstractItemView)
            model = view.model()
            return [str(model.index(row, 0).data()) for row in range(model.rowCount())]
    raise RuntimeError("no History docker")


def _layers(doc, nodes) -> list:
    """Each node, depth first: name, type, blending, visibility and a hash of its pixels."""
    found = []
    for node in nodes:
        found.append([node.name(), node.type(), node.blendingMode(), node.visible(),
                      hash(bytes(node.pixelData(0, 0, doc.width(), doc.height())))])
        found.extend(_layers(doc, node.childNodes()))
    return found


def _canvas(state, window) -> None:
    """The preview on the canvas, step by step (see the module's docstring)."""
    from limner_krita.canvas import canvas_widget
    from limner_krita.docker import INSTANCES
    from limner_krita.kritaio import image_bytes

    docker, doc, spec = INSTANCES[0], state["doc"], state["spec"]["canvas"]
    panel, previewer, canvas = docker.panel, docker.previewer, docker.canvas
    found = state["findings"].setdefault("canvas", {})
    step = state["step"]
    idle = previewer.in_flight is None and not previewer.wanted and \
        not previewer.timer.isActive()

    def set_light(azimuth, elevation):
        controls = panel.controls["relight"]
        controls["azimuth"].set_value(azimuth)
        controls["elevation"].set_value(elevation)
        previewer.schedule()

    if step == "canvas":
        # a preview's selection read smaller (as at a zoom under 100 %): 255 inside the
        # selected rectangle, 0 well outside it (Krita 5.2's Qt once gave 32-bit pixels)
        from limner_krita import kritaio

        side = int(max(doc.width(), doc.height()) * 0.8)
        small = kritaio.read_preview(doc, state["source"], side)
        width, scale = small.pixels.width, small.pixels.width / doc.width()
        x0, y0, w0, h0 = state["spec"]["selection"]
        inside = [small.mask[y * width + x]
                  for y in range(int((y0 + 10) * scale), int((y0 + h0 - 10) * scale))
                  for x in range(int((x0 + 10) * scale), int((x0 + w0 - 10) * scale))]
        above = small.mask[:int((y0 - 10) * scale) * width]
        found["preview_mask"] = {"inside_min": min(inside), "above_max": max(above),
                                 "bytes": len(small.mask),
                                 "pixels": width * small.pixels.height}
        doc.setActiveNode(state["source"])
        panel.select_operation("relight")
        panel.controls["relight"]["setup"].set_value("custom")
        panel.canvas_preview.setChecked(True)
        _history(window)                          # the docker shown, so that it follows
        state["canvas_before"] = {"layers": _layers(doc, doc.topLevelNodes())}
        state["step"] = "canvas-history"
    elif step == "canvas-history":
        state["canvas_before"]["history"] = _history(window)
        set_light(*spec["lights"][0])
        state["step"] = "canvas-first"
    elif step == "canvas-first":
        if not (idle and canvas.shown()):
            return
        overlay = canvas.overlay
        found["first"] = {"pictures": overlay.pictures,
                          "size": [overlay.image.width(), overlay.image.height()],
                          "screen_rect": list(overlay.screen_rect().getRect()),
                          "hash": hash(image_bytes(overlay.image, 4))}
        QtWidgets.QApplication.processEvents()
        window.qwindow().grab().save(spec["shot"])
        overlay.hide()                            # the canvas as Krita draws it, to find
        widget = canvas_widget(window)            # where it puts the layer
        QtWidgets.QApplication.processEvents()
        picture = widget.grabFramebuffer() if hasattr(widget, "grabFramebuffer") \
            else widget.grab().toImage()
        picture.save(spec["canvas_grab"])
        overlay.show()
        set_light(*spec["lights"][1])
        state["step"] = "canvas-second"
    elif step == "canvas-second":
        overlay = canvas.overlay
        if not (idle and overlay.pictures > found["first"]["pictures"]):
            return
        found["second"] = {"pictures": overlay.pictures,
                           "hash": hash(image_bytes(overlay.image, 4))}
        doc.setActiveNode(docker.results[0])      # another layer: the preview goes
        state.update(step="canvas-switched", switched=time.monotonic())
    elif step == "canvas-switched":
        if canvas.shown() and time.monotonic() - state["switched"] < 3:
            return
        found["shown_after_switching_layers"] = canvas.shown()
        doc.setActiveNode(state["source"])
        set_light(*spec["lights"][1])
        state["step"] = "canvas-back"
    elif step == "canvas-back":
        if not (idle and canvas.shown()):
            return
        panel.cancel_button.click()
        state["step"] = "canvas-cancelled"
    elif step == "canvas-cancelled":
        found["after_cancel"] = {"shown": canvas.shown(),
                                 "overlay_visible": canvas.overlay.isVisible(),
                                 "layers_unchanged": _layers(doc, doc.topLevelNodes())
                                 == state["canvas_before"]["layers"],
                                 "history": _history(window),
                                 "history_before": state["canvas_before"]["history"]}
        set_light(*spec["lights"][0])             # shown again, then Run with it
        state["step"] = "canvas-apply"
    elif step == "canvas-apply":
        if not (idle and canvas.shown()):
            return
        state["results_before"] = len(docker.results)
        state["history_before_apply"] = _history(window)
        state["apply_started"] = time.monotonic()
        panel.run_button.click()
        found["shown_while_running"] = canvas.shown()
        state["step"] = "canvas-applied"
    elif step == "canvas-applied":
        if docker.pending is not None:
            return
        if len(docker.results) == state["results_before"]:
            raise RuntimeError(f"no result with the canvas preview: {panel.status.text()}")
        found["apply_seconds"] = round(time.monotonic() - state["apply_started"], 2)
        state["step"] = "canvas-applied-history"
    elif step == "canvas-applied-history":
        group = docker.results[-1]
        found["applied"] = {"shown": canvas.shown(), "group": group.name(),
                            "layers": _layers(doc, group.childNodes()),
                            "history_before": state["history_before_apply"],
                            "history": _history(window)}
        panel.canvas_preview.setChecked(False)    # the same run, no preview on the canvas
        panel.live_preview.setChecked(False)
        state["results_before"] = len(docker.results)
        panel.run_button.click()
        state["step"] = "canvas-plain"
    elif step == "canvas-plain":
        if docker.pending is not None:
            return
        if len(docker.results) == state["results_before"]:
            raise RuntimeError(f"no plain result: {panel.status.text()}")
        group = docker.results[-1]
        found["plain"] = {"group": group.name(), "layers": _layers(doc, group.childNodes())}
        panel.live_preview.setChecked(True)       # shown again, then the document closed
        panel.canvas_preview.setChecked(True)
        doc.setActiveNode(state["source"])
        set_light(*spec["lights"][1])
        state["step"] = "canvas-close"
    elif step == "canvas-close":
        if not (idle and canvas.shown()):
            return
        doc.setModified(False)                    # else Krita asks whether to save
        doc.close()
        state["step"] = "canvas-closed"
    elif step == "canvas-closed":
        docker.cancel()                           # the overlay went with its canvas
        found["after_close"] = {"shown": canvas.shown(), "documents": len(
            Krita.instance().documents())}
        _finish(state, state["findings"])


def _canvas_rate(state) -> None:
    """bench_editor --canvas: pictures per second on the canvas while the light is dragged
    over a whole large layer, and the full-resolution Run on release."""
    from limner_krita.docker import INSTANCES

    docker, doc, spec = INSTANCES[0], state["doc"], state["spec"]["canvas_rate"]
    panel, previewer, canvas = docker.panel, docker.previewer, docker.canvas
    idle = previewer.in_flight is None and not previewer.wanted and \
        not previewer.timer.isActive()
    step = state["step"]
    if step == "rate":
        doc.setSelection(None)                     # the whole layer
        doc.setActiveNode(state["source"])
        docker.setFloating(True)
        docker.resize(340, 980)
        panel.select_operation("relight")
        panel.canvas_preview.setChecked(spec.get("on_canvas", True))
        previewer.schedule()
        state["step"] = "rate-warm"
    elif step == "rate-warm":                      # the layer read, its geometry worked out
        if idle and previewer.shown and (canvas.shown() or not spec.get("on_canvas", True)):
            state["step"] = "rate-drag"
    elif step == "rate-drag":
        before = previewer.shown
        _drag_light(state, spec["moves"])
        state["rate"] = {"pictures_during_drag": previewer.shown - before,
                         "drag_seconds": round(state["drag"]["seconds"], 2),
                         "released": time.monotonic()}
        state["step"] = "rate-settle"
    elif step == "rate-settle":
        if not idle:
            return
        rate = state["rate"]
        rate["last_preview_after_release_ms"] = round(
            (time.monotonic() - rate.pop("released")) * 1000)
        overlay = canvas.overlay if canvas.shown() else None
        pixmap = panel.preview.pixmap()
        rate.update(per_second=round(rate["pictures_during_drag"] / rate["drag_seconds"], 1),
                    preview_size=[overlay.image.width(), overlay.image.height()] if overlay
                    else [pixmap.width(), pixmap.height()],
                    on_screen=list(overlay.screen_rect().getRect()) if overlay else [0] * 4,
                    document=[doc.width(), doc.height()])
        QtWidgets.QApplication.processEvents()
        state["app_window"] = Krita.instance().activeWindow()
        state["app_window"].qwindow().grab().save(spec["shot"])
        state["results_before"] = len(docker.results)
        rate["run_started"] = time.monotonic()
        panel.run_button.click()
        state["step"] = "rate-run"
    elif step == "rate-run":
        if docker.pending is not None:
            return
        rate = state["rate"]
        rate["full_run_seconds"] = round(time.monotonic() - rate.pop("run_started"), 2)
        rate["status"] = panel.status.text()
        state["findings"]["canvas_rate"] = rate
        _finish(state, state["findings"])
