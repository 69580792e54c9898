"""The Krita docker's widgets with PyQt5 offscreen, outside Krita: controls generated from
the backend's real schemas, progress, cancel and errors through a real backend."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PyQt5 import QtWidgets

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")   # before the QApplication is made
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "krita_plugin"))

from limner import imaging, operations
from limner.schema import Capabilities, Kind
from limner.server import Server
from limner_krita import kritaio
from limner_krita.connection import Backend
from limner_krita.controller import Controller, Request, Source, State, UnsupportedLayer
from limner_krita.panel import LimnerPanel

WIDGETS = {Kind.FLOAT: "QDoubleSpinBox", Kind.INT: "QSpinBox", Kind.BOOL: "QCheckBox",
           Kind.CHOICE: "QComboBox", Kind.COLOR: "QPushButton", Kind.TEXT: "QLineEdit",
           Kind.FILE: "QWidget", Kind.IMAGE: "QWidget"}


@pytest.fixture(scope="module")
def app():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


@pytest.fixture
def described():
    """The capabilities as the welcome carries them (JSON)."""
    return Server(write_discovery=False).capabilities()


@pytest.fixture
def capabilities(described):
    return Capabilities.from_json(described)


def wait_for(app, condition, seconds=60):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        app.processEvents()
        time.sleep(0.01)


def test_controls_are_generated_from_the_schemas(app, capabilities):
    panel = LimnerPanel(layers_provider=lambda: ["Background", "Reference"])
    panel.set_capabilities(capabilities)
    shown = [panel.operation_box.itemData(i) for i in range(panel.operation_box.count())]
    assert shown == ["background.remove", "background.replace", "background.blur",
                     "background.generate", "relight", "style", "grade",
                     "mood"]               # the hidden diagnostics op is not offered
    for op in capabilities.offered:
        panel.select_operation(op.id)
        assert panel.operation() == op
        for param in op.params:
            widget = panel.controls[op.id][param.name].widget
            assert type(widget).__name__ == WIDGETS[param.kind], param.name
            assert widget.toolTip() == param.help
        # the defaults the widgets show are what the backend accepts as its defaults
        assert operations.get(op.id).validate(panel.values()) == \
            operations.get(op.id).validate({})


def test_a_new_operation_appears_without_plugin_changes(app, described):
    described["operations"].append({
        "id": "skin.smooth", "label": "Smooth Skin", "description": "new in the backend",
        "hidden": False, "params": [
            {"name": "amount", "kind": "float", "default": 0.3, "label": "Amount",
             "help": "how much", "min": 0, "max": 1, "step": 0.1},
            {"name": "keep_pores", "kind": "bool", "default": True, "label": "Keep pores",
             "help": ""}]})
    panel = LimnerPanel()
    panel.set_capabilities(Capabilities.from_json(described))
    panel.select_operation("skin.smooth")
    panel.controls["skin.smooth"]["amount"].widget.setValue(0.7)
    assert panel.values() == {"amount": 0.7, "keep_pores": True}
    assert panel.description.text() == "new in the backend"


def test_image_parameters_offer_the_documents_layers(app, capabilities):
    panel = LimnerPanel(layers_provider=lambda: ["Background", "Van Gogh"])
    panel.set_capabilities(capabilities)
    panel.select_operation("style")
    control = panel.controls["style"]["reference"]
    assert [control.layer.itemText(i) for i in range(control.layer.count())] == \
        ["(image file)", "Background", "Van Gogh"]
    control.layer.setCurrentText("Van Gogh")
    assert panel.values()["reference"] == ("layer", "Van Gogh")


def test_states_progress_and_buttons(app, capabilities):
    panel = LimnerPanel()
    assert not panel.run_button.isEnabled() and "Connecting" in panel.status.text()
    panel.set_capabilities(capabilities)
    panel.set_state("ready", "limner 0.1.0")
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    panel.set_state("busy")
    assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    panel.set_progress(0.42, "matting")
    assert panel.progress.value() == 42 and "matting" in panel.progress.format()
    panel.set_state("error", "the layer is empty")
    assert panel.status.text() == "Error: the layer is empty"
    assert "c0392b" in panel.status.styleSheet() and panel.run_button.isEnabled()


def _request(image, op, params):
    return Request(op, params, Source(imaging.to_pixels(image)))


@pytest.fixture
def connected(app, server, monkeypatch, capabilities):
    """A panel wired to the plug-in's Backend connection, against the real server."""
    monkeypatch.setenv("LIMNER_STATE_DIR", str(server.server.state_dir))
    panel = LimnerPanel()
    backend = Backend("pytest-krita-panel")
    events = {"finished": [], "failed": [], "stages": []}
    backend.state_changed.connect(panel.set_state)
    backend.capabilities_ready.connect(panel.set_capabilities)
    backend.progress.connect(panel.set_progress)
    backend.progress.connect(lambda f, stage: events["stages"].append(stage))
    backend.finished.connect(lambda request, layers: events["finished"].append(layers))
    backend.failed.connect(lambda code, message: (events["failed"].append((code, message)),
                                                  panel.set_state("error", message)))
    panel.cancel_clicked.connect(backend.cancel)
    backend.connect_async()
    wait_for(app, lambda: panel.state == "ready")
    return panel, backend, events


def test_a_job_runs_off_the_gui_thread_and_reports_progress(app, connected, portraits):
    panel, backend, events = connected
    assert panel.operation_box.count() == 8
    backend.run_async(_request(portraits["astronaut"], "background.remove", {}))
    wait_for(app, lambda: events["finished"] or events["failed"])
    assert not events["failed"]
    assert [layer.name for layer, _ in events["finished"][0]] == ["Cut-out [AI rvm]",
                                                                  "Matte [AI rvm]"]
    assert "matting" in events["stages"] and panel.progress.value() >= 85


def test_cancel_button_stops_the_job(app, connected, portraits):
    import cv2

    panel, backend, events = connected
    big = cv2.resize(portraits["grace_hopper"], (1600, 1800))
    backend.progress.connect(lambda f, stage: stage == "matting" and panel.cancel_button.click())
    panel.set_state("busy")
    backend.run_async(_request(big, "background.remove", {}))
    wait_for(app, lambda: events["finished"] or events["failed"])
    assert [code for code, _ in events["failed"]] == ["cancelled"]
    assert panel.state == "error" and "cancelled" in panel.status.text()


def test_backend_errors_are_shown(app, connected, portraits):
    panel, backend, events = connected
    backend.run_async(_request(portraits["astronaut"], "background.blur", {"radius": 999}))
    wait_for(app, lambda: events["failed"])
    assert events["failed"][0][0] == "bad_parameter"
    assert "radius must be between 1 and 200" in panel.status.text()
    assert panel.run_button.isEnabled()


def test_a_backend_that_dies_mid_job_is_started_again_on_the_next_run(app, portraits, tmp_path,
                                                                      monkeypatch):
    """The plug-in's own connection starts the backend (the command the installer
    records), loses it mid-job (killed), reports the lost connection, and on the next
    run starts a new backend and runs there."""
    import signal

    import cv2
    from limner import discovery, launcher

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    monkeypatch.setenv("LIMNER_STATE_DIR", str(state))
    launcher.write_record([sys.executable, "-m", "limner", "serve", "--port", "0",
                           "--log-level", "WARNING"], [], state)
    backend = Backend("pytest-reconnect")
    events = {"finished": [], "failed": [], "ready": []}
    backend.state_changed.connect(lambda s, m: s == "ready" and events["ready"].append(m))
    backend.finished.connect(lambda request, layers: events["finished"].append(layers))
    backend.failed.connect(lambda code, message: events["failed"].append(code))
    first = None
    try:
        def kill_at_matting(fraction, stage):
            if stage == "matting" and first is not None:
                os.kill(first, signal.SIGKILL)

        backend.progress.connect(kill_at_matting)
        backend.connect_async()
        wait_for(app, lambda: events["ready"], 120)
        first = discovery.read(state)["pid"]
        big = cv2.resize(portraits["grace_hopper"], (1600, 1800))
        backend.run_async(_request(big, "background.remove", {}))
        wait_for(app, lambda: events["failed"], 120)
        assert events["failed"] == ["closed"]
        first = None
        backend.run_async(_request(portraits["astronaut"], "background.remove",
                                   {"engine": "mediapipe"}))
        wait_for(app, lambda: events["finished"] or len(events["failed"]) > 1, 120)
        assert len(events["finished"]) == 1, events["failed"]
        assert discovery.read(state)["pid"] != first
    finally:
        info = discovery.read(state)
        if info is not None:
            os.kill(info["pid"], signal.SIGTERM)


def test_the_controller_builds_a_request_from_the_panel_and_the_layers_it_reads(
        app, capabilities, portraits):
    panel = LimnerPanel()
    panel.set_capabilities(capabilities)
    panel.set_layers(["Backdrop"])
    panel.select_operation("style")
    controls = panel.controls["style"]
    controls["preset"].widget.setCurrentText("reference")
    controls["reference"].layer.setCurrentText("Backdrop")
    layers = {None: Source(imaging.to_pixels(portraits["astronaut"]), b"\xff" * 4, (3, 4)),
              "Backdrop": Source(imaging.to_pixels(portraits["grace_hopper"]))}
    read = []

    def reader(name, over):
        read.append((name, over is not None))
        if name not in layers:
            raise UnsupportedLayer(f"no layer named {name!r}")
        return layers[name]

    controller = Controller()
    request = controller.build(panel.operation(), panel.values(), reader)
    assert sorted(read, key=str) == [("Backdrop", False), (None, False)]
    assert request.op == "style" and request.params["preset"] == "reference"
    assert "reference" not in request.params and request.inputs["reference"].width == 512
    assert request.source.offset == (3, 4) and request.title == "Limner: Stylize (reference)"
    assert controller.start(request, "context") and not controller.start(request)
    assert controller.finish() == (request, "context") and controller.pending is None
    controls["reference"].layer.setCurrentText("Gone")     # a layer deleted meanwhile
    controls["reference"].layer.addItem("Gone")
    controls["reference"].layer.setCurrentText("Gone")
    with pytest.raises(UnsupportedLayer, match="no layer named 'Gone'"):
        controller.build(panel.operation(), panel.values(), reader)
    # a hint is read over the source layer (the reader is handed the source)
    panel.select_operation("background.remove")
    panel.controls["background.remove"]["keep"].layer.setCurrentText("Backdrop")
    read.clear()
    request = controller.build(panel.operation(), panel.values(), reader)
    assert sorted(read, key=str) == [("Backdrop", True), (None, False)]
    assert "keep" in request.inputs and "keep" not in request.params


def test_states_are_an_enum_the_signals_carry_as_text(app):
    panel = LimnerPanel()
    panel.set_state("busy")
    assert panel.state is State.BUSY and panel.cancel_button.isEnabled()
    with pytest.raises(ValueError):
        panel.set_state("asleep")


@pytest.mark.parametrize("sample, typecode", [("u8", "B"), ("u16", "H"), ("f32", "f")])
def test_kritaio_pixel_helpers(sample, typecode):
    from array import array

    one = {"u8": 255, "u16": 65535, "f32": 1.0}[sample]
    bgra = array(typecode, [1, 2, 3, one, 4, 5, 6, one]).tobytes()
    assert array(typecode, kritaio.swap_red_blue(bgra, typecode)).tolist() == \
        [3, 2, 1, one, 6, 5, 4, one]
    # a layer larger than one of Qt's rows (8 and 16 bits swap through QImage, by rows)
    many = array(typecode, range(4)) * ((1 << 20) + 3)
    swapped = array(typecode, kritaio.swap_red_blue(many.tobytes(), typecode))
    assert swapped[-4:].tolist() == [2, 1, 0, 3] and swapped[:4].tolist() == [2, 1, 0, 3]
    assert swapped.count(0) == swapped[2::4].count(0) == (1 << 20) + 3
    grey = array(typecode, [7, 8]).tobytes()
    assert array(typecode, kritaio.to_rgba(grey, 1, sample, typecode)).tolist() == \
        [7, 7, 7, one, 8, 8, 8, one]
    rgb = array(typecode, [1, 2, 3]).tobytes()
    assert array(typecode, kritaio.to_rgba(rgb, 3, sample, typecode)).tolist() == [1, 2, 3, one]
    if sample == "u16":
        assert kritaio.to_u8(array("H", [0x1234, 0xFF00]).tobytes(), "u16") == b"\x12\xff"
    if sample == "f32":
        assert kritaio.to_u8(array("f", [0.0, 0.5, 2.0]).tobytes(), "f32") == b"\x00\x80\xff"


def drag(widget, points):
    """Press at the first point, move through the rest, release: real Qt mouse events."""
    from PyQt5 import QtCore, QtGui

    def send(kind, point, buttons):
        event = QtGui.QMouseEvent(kind, QtCore.QPointF(*point), QtCore.Qt.LeftButton, buttons,
                                  QtCore.Qt.NoModifier)
        QtWidgets.QApplication.sendEvent(widget, event)

    send(QtCore.QEvent.MouseButtonPress, points[0], QtCore.Qt.LeftButton)
    for point in points[1:]:
        send(QtCore.QEvent.MouseMove, point, QtCore.Qt.LeftButton)
    send(QtCore.QEvent.MouseButtonRelease, points[-1], QtCore.Qt.NoButton)


def test_the_light_sphere_maps_angles_both_ways():
    from limner_krita.light import from_disc, to_disc

    for azimuth, elevation in ((-45, 30), (0, 0), (90, 10), (-150, 20), (120, -40)):
        x, y, front = to_disc(azimuth, elevation)
        assert front == (abs(azimuth) <= 90)
        assert from_disc(x, y, front) == pytest.approx((azimuth, elevation), abs=1e-6)
    assert from_disc(-1, 0, True) == pytest.approx((-90, 0))       # the image's left
    assert from_disc(0, 2, True) == pytest.approx((0, 90))         # outside: the edge


def test_dragging_the_key_moves_the_controls_and_a_setup_turns_custom(app, capabilities):
    panel = LimnerPanel()
    panel.set_capabilities(capabilities)
    panel.select_operation("relight")
    controls, sphere = panel.controls["relight"], panel.spheres["relight"]
    sphere.resize(200, 200)
    controls["setup"].widget.setCurrentText("rembrandt")          # moves the markers
    assert controls["azimuth"].value() == -60 and controls["elevation"].value() == 45
    assert sphere.lights[""] == [-60, 45] and sphere.shown["fill_"] and not sphere.shown["rim_"]
    start = sphere.marker_position("")
    cx, cy, r = sphere._disc()
    drag(sphere, [(start.x(), start.y()), (cx + 0.3 * r, cy - 0.2 * r),
                  (cx + 0.5 * r, cy - 0.5 * r)])
    azimuth, elevation = controls["azimuth"].value(), controls["elevation"].value()
    assert azimuth > 0 and elevation == pytest.approx(30, abs=1)   # y = sin(30°) = 0.5
    assert controls["setup"].value() == "custom"                  # the drag takes effect
    assert controls["fill_intensity"].value() == pytest.approx(0.1)   # the setup's fill kept
    # while the hand drags, the docker asks for smaller previews; on release, one at full
    # size (the release asks for it)
    asked = []
    panel.values_changed.connect(lambda: asked.append(panel.dragging))
    events = []
    sphere.moved.connect(lambda *_: events.append(panel.dragging))
    start = sphere.marker_position("")
    drag(sphere, [(start.x(), start.y()), (start.x() - 5, start.y())])
    assert events and all(events) and not panel.dragging
    assert asked and asked[-1] is False                            # the release's ask
    controls["azimuth"].widget.setValue(-90)                       # spin box -> sphere
    assert sphere.lights[""][0] == -90
    controls["rim_intensity"].widget.setValue(1.0)
    assert sphere.shown["rim_"]


def test_a_setup_on_a_turned_face_shows_and_keeps_where_the_backend_put_its_lights(
        app, capabilities, client, portraits):
    """A preview's provenance says where the face looks and where a named setup put its
    lights (turned with the face): the sphere shows both, and dragging one light keeps the
    others where the setup had them (the rim setup's two edges as a rim and its mirror);
    the custom values then place the lights the setup did."""
    from limner.engines.lights import Settings, rig
    from turned import turned

    image = turned(portraits["astronaut"], 30)
    panel = LimnerPanel()
    panel.set_capabilities(capabilities)
    panel.select_operation("relight")
    controls, sphere = panel.controls["relight"], panel.spheres["relight"]
    sphere.resize(200, 200)
    for setup in ("rembrandt", "rim"):
        controls["setup"].widget.setCurrentText(setup)
        (layer, pixels), = client.run("relight", panel.values(), imaging.to_pixels(image),
                                      preview_side=256)
        panel.show_preview(pixels, layer.provenance)
        yaw, placed = layer.provenance["face_yaw"], layer.provenance["lights"]
        assert abs(yaw) > 10 and sphere.face_yaw == yaw
        key = placed[0]
        assert sphere.lights[""] == [key["azimuth"], key["elevation"]]
        rims = [light for light in placed if light["role"] == "rim"]
        assert sphere.shown["rim_mirror"] == (len(rims) == 2)
        # drag the fill (rembrandt) or the key (rim) a little
        prefix = "fill_" if setup == "rembrandt" else ""
        start = sphere.marker_position(prefix)
        drag(sphere, [(start.x(), start.y()), (start.x() + 4, start.y() - 4)])
        assert controls["setup"].value() == "custom"
        lights = rig(Settings.of(operations.get("relight").validate(panel.values())), yaw).lights
        dragged = {"fill_": "fill", "": "key"}[prefix]
        for before in placed:
            if before["role"] == dragged:
                continue
            after = [light for light in lights if light.role == before["role"] and
                     abs(light.azimuth - before["azimuth"]) < 1]
            assert after and after[0].elevation == pytest.approx(before["elevation"], abs=1)
            assert after[0].intensity == pytest.approx(before["intensity"], abs=0.01)
        assert sum(light.role == "rim" for light in lights) == len(rims)


def test_only_the_chosen_engines_controls_show(app, capabilities):
    panel = LimnerPanel()
    panel.set_capabilities(capabilities)
    panel.set_state("ready")
    panel.select_operation("relight")
    controls = panel.controls["relight"]
    shown = {name for name, c in controls.items() if not c.widget.isHidden()}
    assert {"sheen", "fill_azimuth", "ambient"} <= shown and not {"steps", "seed"} & shown
    controls["engine"].widget.setCurrentText("ic-light")
    shown = {name for name, c in controls.items() if not c.widget.isHidden()}
    assert {"steps", "seed", "azimuth", "softness"} <= shown
    assert not {"sheen", "fill_azimuth", "ambient"} & shown
    assert controls["steps"].label.isHidden() is False and controls["sheen"].label.isHidden()
    # IC-Light's weights are not here: the docker offers them instead of failing later
    asked = []
    panel.models_clicked.connect(asked.append)
    assert not panel.missing.isHidden() and not panel.run_button.isEnabled()
    panel.download_button.click()
    assert asked == [["sd15", "ic-light-fc", "ic-light-fbc"]]
    controls["engine"].widget.setCurrentText("geometric")
    assert panel.missing.isHidden() and panel.run_button.isEnabled()


def test_previews_are_coalesced_and_the_newest_settings_win(app, connected, portraits):
    """A burst of changes (a dragged light) against the real backend: far fewer preview
    runs than changes, never two in flight, and the last picture shown is of the last
    settings."""
    import cv2
    from limner_krita.preview import Previewer

    panel, backend, _ = connected
    layer = Source(imaging.to_pixels(cv2.resize(portraits["astronaut"], (384, 384))))
    settings = {"azimuth": -90.0}
    sent, shown, told = [], [], []

    def build():
        sent.append(settings["azimuth"])
        return Request("relight", {"azimuth": settings["azimuth"], "elevation": 20.0}, layer)

    previewer = Previewer(backend, build, lambda pixels, provenance: shown.append(pixels),
                          told.append, interval_ms=30)
    for step in range(60):                    # 60 moves over about 0.6 s
        settings["azimuth"] = -90.0 + 3 * step
        previewer.schedule()
        ended = sum(previewer.ended.values())
        assert previewer.in_flight is None or previewer.sent - previewer.shown - ended <= 1
        app.processEvents()
        time.sleep(0.01)
    wait_for(app, lambda: previewer.in_flight is None and not previewer.timer.isActive()
             and not previewer.wanted)
    assert not told and previewer.asked == 60
    # each sent preview shown, or refused as busy by a loaded backend and asked again
    assert set(previewer.ended) <= {"busy"}, previewer.ended
    assert 2 <= previewer.sent <= 30
    assert previewer.shown + sum(previewer.ended.values()) == previewer.sent
    assert previewer.last_shown == previewer.last_sent
    assert sent[-1] == settings["azimuth"]                 # the newest settings went last
    assert shown[-1].width == 384 and shown[-1].sample == "u8"
    first, last = (imaging.from_pixels(p) for p in (shown[0], shown[-1]))
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 2   # the light moved


def test_once_previews_catch_up_a_warm_up_runs_and_is_not_shown(app, connected, portraits,
                                                                  server):
    """The previewer's warm-up (the docker's: the smaller size a drag will ask for): sent
    when the previews have caught up, its picture not shown and not counted, and the
    backend then has that size's geometry, so the next preview at it is quick."""
    import cv2
    from limner import cache
    from limner_krita.preview import Previewer

    panel, backend, _ = connected
    picture = cv2.resize(portraits["astronaut"], (384, 384))
    full, small = (Source(imaging.to_pixels(cv2.resize(picture, (side, side))))
                   for side in (384, 192))
    shown, warmed = [], []

    def warm():
        if warmed:
            return None
        warmed.append(True)
        return Request("relight", {"azimuth": 30.0}, small)

    cached = []

    def show(pixels, provenance):
        shown.append(pixels.width)
        cached.append(len(cache.LAYERS.keys()))            # the full size's geometry

    previewer = Previewer(backend, lambda: Request("relight", {"azimuth": -30.0}, full),
                          show, print, warm=warm)
    previewer.schedule()
    wait_for(app, lambda: previewer.in_flight is None and not previewer.timer.isActive())
    assert shown == [384] and warmed == [True]               # the warm-up's not shown
    assert previewer.sent == previewer.shown == 1 and not previewer.ended
    assert len(cache.LAYERS.keys()) > cached[0]              # and the smaller size's too


def test_the_models_dialog_lists_and_downloads_through_the_backend(app, connected, lora_hub):
    """The dialog against the real backend, downloading from the local hub."""
    from limner import models
    from limner_krita.models_dialog import ModelsDialog

    panel, backend, _ = connected
    dialog = ModelsDialog(backend, panel.capabilities.models, ["lcm-lora-sd15"])
    names = [dialog.table.item(row, 0).text() for row in range(dialog.table.rowCount())]
    assert sorted(names) == sorted(models.MODELS) and names[0] == "lcm-lora-sd15"
    assert dialog.table.item(0, 1).text() == "135 MB"
    assert dialog.table.item(0, 3).text() == "style/diffusion"
    assert dialog.table.item(0, 4).text() == "not here"
    stages = []
    backend.pull_progress.connect(lambda name, fraction, stage: stages.append(stage))
    dialog.download_button.click()
    assert dialog.cancel_button.isEnabled() and not dialog.download_button.isEnabled()
    wait_for(app, lambda: dialog.downloading is None)
    assert dialog.table.item(0, 4).text() == "here", dialog.status.text()
    assert "lcm-lora-sd15: 24 of 24 MB" in stages and dialog.progress.value() == 1000


def test_without_a_backend_the_docker_says_what_to_run_and_runs_the_installer(app, tmp_path,
                                                                             monkeypatch):
    """No backend answers and none is recorded: the panel shows the command for this
    system, without an installer button. With a record whose backend is gone but whose
    installer is there, the button runs the installer (here a stand-in that records a
    working backend, as the real one does) and the docker connects."""
    import signal

    from limner import discovery, launcher

    state = tmp_path / "state"
    monkeypatch.setenv("LIMNER_STATE_DIR", str(state))
    panel, backend = LimnerPanel(), Backend("pytest-not-installed")
    backend.state_changed.connect(panel.set_state)
    backend.not_installed.connect(lambda message, installer: panel.set_not_installed(
        message, installer is not None))
    got = []
    backend.not_installed.connect(lambda message, installer: got.append(installer))
    backend.connect_async()
    wait_for(app, lambda: got)
    assert panel.state is State.NOT_INSTALLED and got == [None]
    assert launcher.setup_command("krita") in panel.status.text()
    assert panel.install_button.isHidden()

    stand_in = tmp_path / "install" / "setup.py"
    stand_in.parent.mkdir()
    stand_in.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent / 'backend')!r})\n"
        "from limner import launcher\n"
        "launcher.write_record([sys.executable, '-m', 'limner', 'serve', '--port', '0'], "
        "sys.argv[:1])\n")
    launcher.write_record([str(tmp_path / "moved" / "python"), "-m", "limner", "serve"],
                          [sys.executable, str(stand_in)], state)
    got.clear()
    backend.connect_async()
    wait_for(app, lambda: got)
    assert got == [[sys.executable, str(stand_in)]]
    assert "moved or deleted" in panel.status.text() and not panel.install_button.isHidden()
    states = []
    backend.state_changed.connect(lambda st, message: states.append(st))
    backend.install_async(got[0])
    try:
        wait_for(app, lambda: "ready" in states, 120)
        assert "installing" in states and panel.state is State.READY
        assert panel.install_button.isHidden()
    finally:
        info = discovery.read(state)
        if info is not None:
            os.kill(info["pid"], signal.SIGTERM)


def test_a_mood_fills_its_recipe_and_a_lut_file_its_look(app, capabilities):
    """Picking film noir puts its recipe into the controls, a value changed afterwards is
    what the panel sends; a LUT file typed or picked makes the look 'LUT file'."""
    from limner.operations.mood import MOODS

    panel = LimnerPanel()
    panel.set_capabilities(capabilities)
    panel.select_operation("mood")
    controls = panel.controls["mood"]
    controls["mood"].widget.setCurrentText("film noir")
    controls["temperature"].widget.setValue(3000.0)
    values = panel.values()
    assert {name: values[name] for name in MOODS["film noir"]} == \
        {**MOODS["film noir"], "temperature": 3000.0}
    panel.select_operation("grade")
    lut = panel.controls["grade"]["lut"]
    lut.path.setText("/looks/teal.cube")
    lut.path.editingFinished.emit()
    assert panel.values()["look"] == "LUT file"


def test_the_server_dialog_moves_the_docker_to_a_studio_server_and_back(app, connected,
                                                                        portraits):
    """The docker's Server… dialog against a real studio server (TLS, a user's token): a
    wrong pin is refused, the right one connects and a job runs there; the local backend
    again at the end."""
    from limner import discovery, studio
    from limner.server import ServerThread
    from limner_krita.studio_dialog import StudioDialog

    panel, backend, events = connected
    state = discovery.state_dir()
    users = studio.Users(state)
    token = users.add("krita-user")
    tls, fingerprint = studio.tls_context(*studio.certificate(state, ["127.0.0.1"]))
    statuses = []
    backend.state_changed.connect(lambda st, message: statuses.append((st, message)))
    try:
        with ServerThread(port=0, studio=studio.Studio(tls, fingerprint, users)) as shared:
            dialog = StudioDialog(backend)
            assert dialog.status.text() == "Now: the local backend"
            dialog.url.setText(shared.uri.replace("wss://", "ws://"))
            dialog.token.setText(token)
            dialog.use_button.click()                       # never a token in clear
            assert "wss://" in dialog.status.text() and discovery.studio_setting() is None
            dialog.url.setText(shared.uri)
            dialog.fingerprint.setText("AB:" * 31 + "AB")
            dialog.use_button.click()
            wait_for(app, lambda: panel.state == "error")
            assert "not the one pinned" in panel.status.text()
            dialog.fingerprint.setText(fingerprint)
            dialog.use_button.click()                       # the token field kept its token
            wait_for(app, lambda: panel.state == "ready")
            assert f"studio server {shared.uri}" in panel.status.text()
            assert discovery.studio_setting()["token"] == token
            backend.run_async(_request(portraits["astronaut"][:64, :64], "diagnostics.echo",
                                       {}))
            wait_for(app, lambda: events["finished"] or events["failed"])
            assert not events["failed"] and events["finished"][0][0][1].width == 64
            assert any(user == "krita-user" for user in
                       (c.user.name for c in shared.server.connections if c.user))
            dialog.local_button.click()
            wait_for(app, lambda: statuses and statuses[-1][0] == "ready" and
                     "studio" not in statuses[-1][1])
            assert discovery.studio_setting() is None
    finally:
        discovery.set_studio_setting("", "")
        users.remove("krita-user")
