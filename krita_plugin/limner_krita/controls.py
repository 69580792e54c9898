"""One control class per parameter kind (limner.schema.Kind), each a Qt widget and how
to read it back: the panel builds an operation's page from its OperationSpec with
`control_for`. A new kind is one class here, named in CONTROLS. Plain Qt, no Krita."""

from __future__ import annotations

from limner.schema import Kind, Param

from .qt import QtGui, QtWidgets


class Control:
    """A parameter's widget and label; `value()` is what is sent, `set_value` takes a
    value as the schema gives it, `connect_changed(callback)` calls back on each change
    the user makes."""

    def __init__(self, param: Param, layers_provider=list):
        self.param = param
        self.widget = self.make(layers_provider)
        self.widget.setToolTip(param.help)
        self.widget.setObjectName(f"param_{param.name}")
        self.set_value(param.default)
        self.label = QtWidgets.QLabel(param.label)
        self.label.setToolTip(param.help)

    def make(self, layers_provider) -> QtWidgets.QWidget:
        raise NotImplementedError

    def connect_changed(self, callback) -> None:
        raise NotImplementedError

    def set_value(self, value) -> None:
        raise NotImplementedError

    def value(self):
        raise NotImplementedError

    def set_visible(self, visible: bool) -> None:
        self.widget.setVisible(visible)
        self.label.setVisible(visible)

    def set_layers(self, names: list[str]) -> None:
        """The document's layers changed (only a layer-taking control cares)."""


class FloatControl(Control):
    def make(self, layers_provider):
        w = QtWidgets.QDoubleSpinBox()
        low, high = self.param.clamp(-1e9), self.param.clamp(1e9)
        w.setRange(low, high)
        w.setSingleStep(self.param.step or 0.1)
        w.setDecimals(2)
        return w

    def connect_changed(self, callback):
        self.widget.valueChanged.connect(lambda _: callback())

    def set_value(self, value):
        self.widget.setValue(self.param.clamp(value))

    def value(self):
        return self.widget.value()


class IntControl(FloatControl):
    def make(self, layers_provider):
        w = QtWidgets.QSpinBox()
        w.setRange(self.param.clamp(-2 ** 31), self.param.clamp(2 ** 31 - 1))
        w.setSingleStep(int(self.param.step or 1))
        return w


class BoolControl(Control):
    def make(self, layers_provider):
        return QtWidgets.QCheckBox()

    def connect_changed(self, callback):
        self.widget.toggled.connect(lambda _: callback())

    def set_value(self, value):
        self.widget.setChecked(bool(value))

    def value(self):
        return self.widget.isChecked()


class ChoiceControl(Control):
    def make(self, layers_provider):
        w = QtWidgets.QComboBox()
        w.addItems([str(c) for c in self.param.choices])
        return w

    def connect_changed(self, callback):
        self.widget.currentIndexChanged.connect(lambda _: callback())

    def set_value(self, value):
        self.widget.setCurrentIndex([str(c) for c in self.param.choices].index(str(value)))

    def value(self):
        return self.param.choices[self.widget.currentIndex()]


class ColourControl(Control):
    def make(self, layers_provider):
        self._on_change = None
        w = QtWidgets.QPushButton()
        w.clicked.connect(self._pick)
        return w

    def connect_changed(self, callback):
        self._on_change = callback

    def set_value(self, value):
        self._colour = value
        self.widget.setText(value)
        self.widget.setStyleSheet(f"background-color: {value}")

    def value(self):
        return self._colour

    def _pick(self):
        colour = QtWidgets.QColorDialog.getColor(QtGui.QColor(self._colour), self.widget)
        if colour.isValid():
            self.set_value(colour.name())
            if self._on_change:
                self._on_change()


class TextControl(Control):
    def make(self, layers_provider):
        w = QtWidgets.QLineEdit()
        w.setClearButtonEnabled(True)
        return w

    def connect_changed(self, callback):
        self.widget.editingFinished.connect(callback)

    def set_value(self, value):
        self.widget.setText(value)
        self.widget.setCursorPosition(0)           # show a long prompt from its start

    def value(self):
        return self.widget.text()


class FileControl(Control):
    """A path, typed or picked (the file types the parameter names, or pictures)."""

    def make(self, layers_provider):
        w = QtWidgets.QWidget()
        self.row = QtWidgets.QHBoxLayout(w)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.path = QtWidgets.QLineEdit()
        self.path.setPlaceholderText("file" if self.param.extensions else "image file")
        browse = QtWidgets.QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse)
        self.row.addWidget(self.path)
        self.row.addWidget(browse)
        return w

    def connect_changed(self, callback):
        self.path.editingFinished.connect(callback)

    def set_value(self, value):
        self.path.setText(value)

    def value(self):
        return self.path.text()

    def _browse(self):
        extensions = self.param.extensions
        kinds = (f"{self.param.label} ({' '.join('*' + e for e in extensions)})"
                 if extensions else "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp)")
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.widget, "Choose a file", "", kinds)
        if path:
            self.path.setText(path)
            self.path.editingFinished.emit()


class ImageControl(FileControl):
    """A picture file, or one of the document's layers: ("layer", name) is sent as an
    extra layer."""

    def make(self, layers_provider):
        w = super().make(layers_provider)
        self.layer = QtWidgets.QComboBox()
        self.layer.addItem("(image file)")
        self.layer.addItems(layers_provider())
        self.row.insertWidget(0, self.layer)
        return w

    def connect_changed(self, callback):
        super().connect_changed(callback)
        self.layer.currentIndexChanged.connect(lambda _: callback())

    def set_layers(self, names):
        current = self.layer.currentText()
        self.layer.clear()
        self.layer.addItem("(image file)")
        self.layer.addItems(names)
        self.layer.setCurrentText(current)

    def value(self):
        if self.layer.currentIndex() > 0:
            return ("layer", self.layer.currentText())
        return super().value()


CONTROLS = {Kind.FLOAT: FloatControl, Kind.INT: IntControl, Kind.BOOL: BoolControl,
            Kind.CHOICE: ChoiceControl, Kind.COLOR: ColourControl, Kind.TEXT: TextControl,
            Kind.FILE: FileControl, Kind.IMAGE: ImageControl}


def control_for(param: Param, layers_provider=list) -> Control:
    return CONTROLS[param.kind](param, layers_provider)
