"""The docker's content as a plain Qt widget (no Krita import, so it is tested offscreen):
an operation chooser, controls generated from the backend's parameter schemas, Run and
Cancel, a progress bar and the backend's state. A new operation or parameter in the
backend shows up here without any change to this file."""

from __future__ import annotations

from .controller import State
from .qt import QtGui, QtWidgets, Signal

STATES = {State.CONNECTING: "Connecting to the Limner backend…",
          State.STARTING: "Starting the backend…", State.READY: "Ready",
          State.BUSY: "Working…", State.ERROR: "Error"}


class ParamControl:
    """One parameter's widget and how to read its value back."""

    def __init__(self, schema: dict, layers_provider):
        self.schema = schema
        kind, default = schema["kind"], schema["default"]
        self.kind = kind
        if kind == "float":
            w = QtWidgets.QDoubleSpinBox()
            w.setRange(schema.get("min", -1e9), schema.get("max", 1e9))
            w.setSingleStep(schema.get("step") or 0.1)
            w.setDecimals(2)
            w.setValue(default)
        elif kind == "int":
            w = QtWidgets.QSpinBox()
            w.setRange(int(schema.get("min", -2**31)), int(min(schema.get("max", 2**31 - 1),
                                                               2**31 - 1)))
            w.setSingleStep(int(schema.get("step") or 1))
            w.setValue(default)
        elif kind == "bool":
            w = QtWidgets.QCheckBox()
            w.setChecked(default)
        elif kind == "choice":
            w = QtWidgets.QComboBox()
            w.addItems([str(c) for c in schema["choices"]])
            w.setCurrentText(str(default))
        elif kind == "color":
            w = QtWidgets.QPushButton(default)
            w.clicked.connect(self._pick_colour)
            self._colour = default
            self._paint_colour(w)
        elif kind == "text":
            w = QtWidgets.QLineEdit(default)
            w.setClearButtonEnabled(True)
            w.setCursorPosition(0)             # show a long prompt from its start
        elif kind in ("file", "image"):
            w = QtWidgets.QWidget()
            row = QtWidgets.QHBoxLayout(w)
            row.setContentsMargins(0, 0, 0, 0)
            self.layer = QtWidgets.QComboBox() if kind == "image" else None
            if self.layer is not None:
                self.layer.addItem("(image file)")
                self.layer.addItems(layers_provider())
                row.addWidget(self.layer)
            self.path = QtWidgets.QLineEdit(default)
            self.path.setPlaceholderText("image file")
            browse = QtWidgets.QToolButton()
            browse.setText("…")
            browse.clicked.connect(self._browse)
            row.addWidget(self.path)
            row.addWidget(browse)
        else:
            raise ValueError(f"unknown parameter kind {kind}")
        w.setToolTip(schema.get("help", ""))
        w.setObjectName(f"param_{schema['name']}")
        self.widget = w

    def _pick_colour(self):
        colour = QtWidgets.QColorDialog.getColor(QtGui.QColor(self._colour), self.widget)
        if colour.isValid():
            self._colour = colour.name()
            self._paint_colour(self.widget)

    def _paint_colour(self, button):
        button.setText(self._colour)
        button.setStyleSheet(f"background-color: {self._colour}")

    def _browse(self):
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.widget, "Choose an image", "",
                                                        "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp)")
        if path:
            self.path.setText(path)

    def set_layers(self, names: list[str]) -> None:
        if self.kind == "image":
            current = self.layer.currentText()
            self.layer.clear()
            self.layer.addItem("(image file)")
            self.layer.addItems(names)
            self.layer.setCurrentText(current)

    def value(self):
        """The value to send; an image parameter naming a layer gives ("layer", name)."""
        w = self.widget
        if self.kind in ("float", "int"):
            return w.value()
        if self.kind == "bool":
            return w.isChecked()
        if self.kind == "choice":
            choices = self.schema["choices"]
            return choices[w.currentIndex()]
        if self.kind == "color":
            return self._colour
        if self.kind == "text":
            return w.text()
        if self.kind == "image" and self.layer.currentIndex() > 0:
            return ("layer", self.layer.currentText())
        return self.path.text()


class LimnerPanel(QtWidgets.QWidget):
    run_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, parent=None, layers_provider=list):
        super().__init__(parent)
        self.layers_provider = layers_provider
        self.controls: dict[str, dict[str, ParamControl]] = {}
        self.operations: list[dict] = []
        layout = QtWidgets.QVBoxLayout(self)
        self.operation_box = QtWidgets.QComboBox()
        self.operation_box.setObjectName("operation")
        self.description = QtWidgets.QLabel()
        self.description.setWordWrap(True)
        self.pages = QtWidgets.QStackedWidget()
        self.operation_box.currentIndexChanged.connect(self._show_operation)
        layout.addWidget(self.operation_box)
        layout.addWidget(self.description)
        layout.addWidget(self.pages)
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
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.set_state(State.CONNECTING)

    def set_capabilities(self, capabilities: dict) -> None:
        """Build one page of controls per operation from the backend's schemas."""
        while self.pages.count():
            self.pages.removeWidget(self.pages.widget(0))
        self.operation_box.blockSignals(True)
        self.operation_box.clear()
        self.operations = [op for op in capabilities["operations"] if not op.get("hidden")]
        self.controls = {}
        for op in self.operations:
            page = QtWidgets.QWidget()
            form = QtWidgets.QFormLayout(page)
            self.controls[op["id"]] = {}
            for schema in op["params"]:
                control = ParamControl(schema, self.layers_provider)
                self.controls[op["id"]][schema["name"]] = control
                form.addRow(schema["label"], control.widget)
            self.pages.addWidget(page)
            self.operation_box.addItem(op["label"], op["id"])
        self.operation_box.blockSignals(False)
        self._show_operation(0)

    def _show_operation(self, index: int) -> None:
        if 0 <= index < len(self.operations):
            self.pages.setCurrentIndex(index)
            self.description.setText(self.operations[index]["description"])

    def operation(self) -> dict | None:
        index = self.operation_box.currentIndex()
        return self.operations[index] if 0 <= index < len(self.operations) else None

    def select_operation(self, op_id: str) -> None:
        self.operation_box.setCurrentIndex(self.operation_box.findData(op_id))

    def values(self) -> dict:
        op = self.operation()
        return {name: c.value() for name, c in self.controls.get(op["id"], {}).items()} if op else {}

    def set_layers(self, names: list[str]) -> None:
        for controls in self.controls.values():
            for control in controls.values():
                control.set_layers(names)

    def set_state(self, state: str, message: str = "") -> None:
        """A State (or its name, as a signal carries it), with an optional message."""
        self.state = state = State(state)
        text = STATES[state] + (f": {message}" if message else "")
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b" if state is State.ERROR else "")
        ready = bool(self.operations) and state in (State.READY, State.ERROR)
        self.run_button.setEnabled(ready)
        self.cancel_button.setEnabled(state is State.BUSY)
        if state is State.BUSY:
            self.progress.setValue(0)
            self.progress.setFormat("%p%")

    def set_progress(self, fraction: float, stage: str) -> None:
        self.progress.setValue(int(round(fraction * 100)))
        self.progress.setFormat(f"%p% — {stage}")
