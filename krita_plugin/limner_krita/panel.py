"""The docker's content as a plain Qt widget (no Krita import, so it is tested offscreen):
an operation chooser, controls generated from the backend's parameter schemas (only those
the chosen engine reads; a light widget where an operation has a light's direction), a
live preview, Run and Cancel, a progress bar and the backend's state. A new operation or
parameter in the backend shows up here without any change to this file."""

from __future__ import annotations

from limner.schema import Capabilities, EngineSpec, OperationSpec, adopted_values, light_markers

from .controller import State
from .controls import Control, control_for
from .light import LightSphere
from .qt import QtCore, QtGui, QtWidgets, Signal

STATES = {State.CONNECTING: "Connecting to the Limner backend…",
          State.STARTING: "Starting the backend…", State.READY: "Ready",
          State.BUSY: "Working…", State.ERROR: "Error",
          State.NOT_INSTALLED: "No Limner backend",
          State.INSTALLING: "Installing the Limner backend…"}


class LimnerPanel(QtWidgets.QWidget):
    run_clicked = Signal()
    cancel_clicked = Signal()
    values_changed = Signal()            # a control of the shown operation changed
    canvas_toggled = Signal(bool)        # the preview on the canvas turned on or off
    models_clicked = Signal(list)        # the models dialog, these models first
    studio_clicked = Signal()            # the studio server setting
    install_clicked = Signal()           # run the backend's installer again
    PREVIEW_HEIGHT = 180

    def __init__(self, parent=None, layers_provider=list):
        super().__init__(parent)
        self.layers_provider = layers_provider
        self.controls: dict[str, dict[str, Control]] = {}
        self.spheres: dict[str, LightSphere] = {}
        self.placed: dict[str, dict] = {}   # op id -> the last preview's provenance
        self.on_canvas = False              # a preview is on the canvas
        self.dragging = False               # a light is being dragged on a sphere
        self.operations: list[OperationSpec] = []
        self.capabilities = Capabilities(())
        self.engine_missing = False
        layout = QtWidgets.QVBoxLayout(self)
        self.operation_box = QtWidgets.QComboBox()
        self.operation_box.setObjectName("operation")
        self.description = QtWidgets.QLabel()
        self.description.setWordWrap(True)
        self.pages = QtWidgets.QStackedWidget()
        self.operation_box.currentIndexChanged.connect(self._show_operation)
        layout.addWidget(self.operation_box)
        layout.addWidget(self.description)
        self.missing = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(self.missing)
        row.setContentsMargins(0, 0, 0, 0)
        self.missing_text = QtWidgets.QLabel()
        self.missing_text.setWordWrap(True)
        self.download_button = QtWidgets.QPushButton("Download…")
        self.download_button.setObjectName("download_engine")
        self.download_button.clicked.connect(
            lambda: self.models_clicked.emit(self.missing_models()))
        row.addWidget(self.missing_text, 1)
        row.addWidget(self.download_button)
        self.missing.setVisible(False)
        layout.addWidget(self.missing)
        scroll = QtWidgets.QScrollArea()          # relight's controls are many
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.pages)
        layout.addWidget(scroll, 1)
        preview_row = QtWidgets.QHBoxLayout()
        self.live_preview = QtWidgets.QCheckBox("Live preview")
        self.live_preview.setObjectName("live_preview")
        self.live_preview.setChecked(True)
        self.live_preview.setToolTip("Show a small preview as the controls change; the "
                                     "document is only changed by Run")
        self.live_preview.toggled.connect(lambda on: on and self.values_changed.emit())
        self.canvas_preview = QtWidgets.QCheckBox("On canvas")
        self.canvas_preview.setObjectName("canvas_preview")
        self.canvas_preview.setChecked(True)
        self.canvas_preview.setToolTip("Show the preview over the layer on the canvas, at "
                                       "the size you see it; Run makes the real layers, "
                                       "Cancel takes the preview away")
        self.canvas_preview.toggled.connect(self.canvas_toggled)
        self.live_preview.toggled.connect(self.canvas_preview.setEnabled)
        self.studio_button = QtWidgets.QPushButton("Server…")
        self.studio_button.setObjectName("studio")
        self.studio_button.setToolTip("Use your studio's shared backend, or the one on this "
                                      "computer")
        self.studio_button.clicked.connect(self.studio_clicked)
        self.models_button = QtWidgets.QPushButton("Models…")
        self.models_button.setObjectName("models")
        self.models_button.clicked.connect(lambda: self.models_clicked.emit([]))
        preview_row.addWidget(self.live_preview)
        preview_row.addWidget(self.canvas_preview)
        preview_row.addStretch(1)
        preview_row.addWidget(self.models_button)
        preview_row.addWidget(self.studio_button)
        layout.addLayout(preview_row)
        self.preview = QtWidgets.QLabel()
        self.preview.setObjectName("preview")
        self.preview.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedHeight(self.PREVIEW_HEIGHT)
        self.preview.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                   QtWidgets.QSizePolicy.Policy.Fixed)
        self.preview.setVisible(False)            # until there is a preview to show
        layout.addWidget(self.preview)
        buttons = QtWidgets.QHBoxLayout()
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.setObjectName("run")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel")
        self.run_button.clicked.connect(self.run_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setObjectName("progress")
        self.status = QtWidgets.QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.install_button = QtWidgets.QPushButton("Run the installer")
        self.install_button.setObjectName("install")
        self.install_button.setToolTip("Run Limner's installer again (its output goes to "
                                       "installer.log in Limner's state folder)")
        self.install_button.clicked.connect(self.install_clicked)
        self.install_button.setVisible(False)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.install_button)
        self.set_state(State.CONNECTING)

    def set_capabilities(self, capabilities: Capabilities) -> None:
        """Build one page of controls per operation from the backend's operations."""
        while self.pages.count():
            self.pages.removeWidget(self.pages.widget(0))
        self.operation_box.blockSignals(True)
        self.operation_box.clear()
        self.capabilities = capabilities
        self.operations = list(capabilities.offered)
        self.controls, self.spheres = {}, {}
        for op in self.operations:
            page = QtWidgets.QWidget()
            form = QtWidgets.QFormLayout(page)
            form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
            controls = self.controls[op.id] = {}
            for param in op.params:
                control = controls[param.name] = control_for(param, self.layers_provider)
                form.addRow(control.label, control.widget)
            if op.has_light:
                self.spheres[op.id] = sphere = LightSphere()
                sphere.setObjectName("light")
                form.insertRow(0, sphere)
                self._link_lights(sphere, op, controls)
            for name, control in controls.items():
                control.connect_changed(lambda n=name, o=op, c=controls: self._implied(o, n, c))
                control.connect_changed(lambda o=op.id: self._changed(o))
            if "engine" in controls:
                controls["engine"].connect_changed(lambda o=op.id: self._show_engine(o))
            self._show_engine(op.id)
            self.pages.addWidget(page)
            self.operation_box.addItem(op.label, op.id)
        self.operation_box.blockSignals(False)
        self._show_operation(0)

    def set_availability(self, capabilities: Capabilities) -> None:
        """New capabilities with the same operations (after a download): only what is
        installed changed, so the controls keep the user's values."""
        self.capabilities = capabilities
        op = self.operation()
        if op is not None:
            self._show_engine(op.id)

    def _link_lights(self, sphere: LightSphere, op: OperationSpec, controls: dict) -> None:
        """Sphere and spin boxes show the same lights; with a named setup the sphere shows
        where the backend put them (turned with the face, from the last preview). A light
        dragged by hand turns the setup into the custom one that places every light where
        the setup had it (the rim setup's two edges as a rim and its mirror), then moves
        the one dragged."""
        def redraw(*_):
            self._draw_lights(op)

        for light in op.lights():
            for name in (light.azimuth, light.elevation, light.intensity):
                if name is not None:
                    controls[name].connect_changed(redraw)
        for name in ("setup", "rim_pair"):
            if name in controls:
                controls[name].connect_changed(redraw)
        redraw()
        handles = {light.prefix: light for light in op.lights()}

        def moved(prefix: str, azimuth: float, elevation: float) -> None:
            setup = controls.get("setup")
            if setup is not None and setup.value() != "custom":
                placed = self.placed.get(op.id, {}).get("lights")
                if placed:
                    self._adopt(controls, placed, self.placed[op.id].get("ambient"))
                setup.widget.blockSignals(True)
                setup.set_value("custom")
                setup.widget.blockSignals(False)
            controls[handles[prefix].azimuth].set_value(azimuth)
            controls[handles[prefix].elevation].set_value(elevation)
            self._draw_lights(op)

        def dragged(*_):
            self.dragging = True

        def released():                     # the full-size preview, now the hand rests
            self.dragging = False
            self._changed(op.id)

        sphere.moved.connect(dragged)
        sphere.moved.connect(moved)
        sphere.released.connect(released)

    def _draw_lights(self, op: OperationSpec) -> None:
        sphere, controls = self.spheres.get(op.id), self.controls.get(op.id, {})
        if sphere is None:
            return
        values = {name: control.value() for name, control in controls.items()}
        markers = light_markers(values, self.placed.get(op.id, {}).get("lights"), op.lights())
        for prefix, where in markers.items():
            if where is not None:
                sphere.set_light(prefix, *where)
            sphere.set_shown(prefix, where is not None)

    @staticmethod
    def _adopt(controls: dict, placed: list, ambient: float | None) -> None:
        """The custom values that put each light where a named setup put it."""
        temperature = controls["temperature"].value() if "temperature" in controls else None
        for name, value in adopted_values(placed, ambient, temperature).items():
            if name in controls:
                controls[name].set_value(value)

    def _implied(self, op: OperationSpec, name: str, controls: dict) -> None:
        """A choice's preset or what a picked file implies, put into the other controls."""
        for other, value in op.implied(name, controls[name].value()).items():
            controls[other].set_value(value)

    def _changed(self, op_id: str) -> None:
        op = self.operation()
        if op is not None and op.id == op_id and self.live_preview.isChecked():
            self.values_changed.emit()

    def _engine_info(self, op: OperationSpec) -> EngineSpec | None:
        controls = self.controls.get(op.id, {})
        if "engine" not in controls:
            return None
        return self.capabilities.engine(op, controls["engine"].value())

    def _show_engine(self, op_id: str) -> None:
        """Only the controls the chosen engine reads; a download offer when its weights
        are missing."""
        controls = self.controls.get(op_id, {})
        engine = controls["engine"].value() if "engine" in controls else None
        for control in controls.values():
            control.set_visible(control.param.read_by(engine))
        op = self.operation()
        if op is not None and op.id == op_id:
            info = self._engine_info(op)
            missing = self.engine_missing = info is not None and not info.available
            self.missing.setVisible(missing)
            if missing and info.setup:     # a lean install: no torch, no diffusers
                self.missing_text.setText(f"{info.label}: needs the diffusion engines, "
                                          f"not installed here. In the Limner folder run: "
                                          f"{info.setup}")
            elif missing:
                self.missing_text.setText(f"{info.label}: its weights are not on this "
                                          "machine.")
            self.download_button.setVisible(missing and not info.setup)
            self.run_button.setEnabled(self._ready())

    def missing_models(self) -> list[str]:
        """The models the chosen engine needs that are not here."""
        op = self.operation()
        return self.capabilities.missing_models(self._engine_info(op) if op else None)

    def _show_operation(self, index: int) -> None:
        if 0 <= index < len(self.operations):
            for i in range(self.pages.count()):   # only the shown page sets the width
                self.pages.widget(i).setSizePolicy(
                    *(2 * [QtWidgets.QSizePolicy.Policy.Preferred if i == index
                           else QtWidgets.QSizePolicy.Policy.Ignored]))
            self.pages.setCurrentIndex(index)
            self.pages.adjustSize()
            self.description.setText(self.operations[index].description)
            self.preview.clear()
            self.preview.setVisible(False)
            self._show_engine(self.operations[index].id)
            self._changed(self.operations[index].id)

    def show_preview(self, pixels, provenance: dict | None = None) -> None:
        """A preview's pixels (RGBA u8, as previews come) in the docker; its provenance
        says where the face looks and where the lights went (the light widget shows
        both)."""
        op = self.operation()
        if op is not None and op.id in self.spheres and provenance:
            self.placed[op.id] = provenance
            self.spheres[op.id].set_face(provenance.get("face_yaw"))
            self._draw_lights(op)
        image = QtGui.QImage(bytes(pixels.data), pixels.width, pixels.height,
                             pixels.width * 4, QtGui.QImage.Format.Format_RGBA8888).copy()
        self.preview.setVisible(True)
        self.preview.setPixmap(QtGui.QPixmap.fromImage(image).scaled(
            max(60, self.preview.width() - 8), self.PREVIEW_HEIGHT - 4,
            QtCore.Qt.AspectRatioMode.KeepAspectRatio,
            QtCore.Qt.TransformationMode.SmoothTransformation))

    def operation(self) -> OperationSpec | None:
        index = self.operation_box.currentIndex()
        return self.operations[index] if 0 <= index < len(self.operations) else None

    def select_operation(self, op_id: str) -> None:
        self.operation_box.setCurrentIndex(self.operation_box.findData(op_id))

    def values(self) -> dict:
        op = self.operation()
        return {name: c.value() for name, c in self.controls.get(op.id, {}).items()} if op else {}

    def set_layers(self, names: list[str]) -> None:
        for controls in self.controls.values():
            for control in controls.values():
                control.set_layers(names)

    def set_state(self, state: str, message: str = "") -> None:
        """A State (or its name, as a signal carries it), with an optional message."""
        self.state = state = State(state)
        text = STATES[state] + (f": {message}" if message else "")
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b" if state in (State.ERROR, State.NOT_INSTALLED)
                                  else "")
        self.status.setTextInteractionFlags(      # the command in the message can be copied
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        if state is not State.NOT_INSTALLED:
            self.install_button.setVisible(False)
        self.run_button.setEnabled(self._ready())
        self.cancel_button.setEnabled(state is State.BUSY or self.on_canvas)
        if state is State.BUSY:
            self.progress.setValue(0)
            self.progress.setFormat("%p%")

    def set_not_installed(self, message: str, can_install: bool) -> None:
        """No backend, with what to do (the command for this system); the installer's
        button when the installer that made the last backend is still there."""
        self.set_state(State.NOT_INSTALLED, message)
        self.install_button.setVisible(can_install)

    def set_canvas_preview(self, shown: bool) -> None:
        """A preview is on the canvas (or no longer): Cancel takes it away."""
        self.on_canvas = shown
        self.cancel_button.setEnabled(self.state is State.BUSY or shown)

    def _ready(self) -> bool:
        """Run is offered: operations known, nothing running, the engine's weights here."""
        return bool(self.operations) and not self.engine_missing and \
            getattr(self, "state", None) in (State.READY, State.ERROR)

    def set_progress(self, fraction: float, stage: str) -> None:
        self.progress.setValue(int(round(fraction * 100)))
        self.progress.setFormat(f"%p% — {stage}")
