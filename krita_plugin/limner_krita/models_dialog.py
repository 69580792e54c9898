"""The models dialog: every model the backend knows (size, licence, the engines that use
it, whether it is here), with Download, progress in bytes and Cancel, through the backend's
pull messages. No Krita here (tested offscreen against the real backend)."""

from __future__ import annotations

from .qt import QtWidgets

COLUMNS = ("Model", "Size", "Licence", "Used by", "State")


class ModelsDialog(QtWidgets.QDialog):
    def __init__(self, backend, models, first: list[str] = (), parent=None):
        super().__init__(parent)
        self.setWindowTitle("Limner models")
        self.setObjectName("limner_models")
        self.backend = backend
        self.downloading: str | None = None
        layout = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel("The high-quality engines' weights. They download once into "
                                 "the backend's model folder; each keeps its own licence.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("models_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QtWidgets.QLabel()
        self.status.setObjectName("models_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        buttons = QtWidgets.QHBoxLayout()
        self.download_button = QtWidgets.QPushButton("Download")
        self.download_button.setObjectName("download")
        self.cancel_button = QtWidgets.QPushButton("Cancel download")
        self.cancel_button.setObjectName("cancel_download")
        close = QtWidgets.QPushButton("Close")
        self.download_button.clicked.connect(self.download)
        self.cancel_button.clicked.connect(backend.cancel_pull)
        close.clicked.connect(self.close)
        for button in (self.download_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        backend.pull_progress.connect(self._progress)
        backend.pull_done.connect(self._done)
        backend.pull_failed.connect(self._failed)
        self.table.itemSelectionChanged.connect(self._buttons)
        self.set_models(models, first)
        self.resize(780, 440)

    def set_models(self, models, first: list[str] = ()) -> None:
        """The backend's models (limner.schema.ModelSpec); those in `first` (an engine's
        missing ones) on top and the first of them selected."""
        self.models = sorted(models, key=lambda m: m.name not in first)
        self.table.setRowCount(len(self.models))
        for row, model in enumerate(self.models):
            cells = (model.name, f"{model.size_mb} MB", model.licence,
                     ", ".join(model.engines), "here" if model.present else "not here")
            for column, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(model.description)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        if first:
            self.table.selectRow(0)
        self._buttons()

    def selected(self):
        rows = self.table.selectionModel().selectedRows()
        return self.models[rows[0].row()] if rows else None

    def download(self) -> None:
        model = self.selected()
        if model is None or self.downloading:
            return
        self.downloading = model.name
        self.progress.setValue(0)
        self.status.setText(f"Downloading {model.name} ({model.size_mb} MB, "
                            f"{model.licence})…")
        self.backend.pull_async(model.name)
        self._buttons()

    def _buttons(self) -> None:
        model = self.selected()
        self.download_button.setEnabled(self.downloading is None and model is not None
                                        and not model.present)
        self.cancel_button.setEnabled(self.downloading is not None)

    def _progress(self, name: str, fraction: float, stage: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.status.setText(stage)

    def _done(self, name: str, path: str) -> None:
        self.downloading = None
        self.progress.setValue(1000)
        self.status.setText(f"{name} is here: {path}")
        for row, model in enumerate(self.models):
            if model.name == name:
                model.present = True
                self.table.item(row, 4).setText("here")
        self._buttons()

    def _failed(self, name: str, code: str, message: str) -> None:
        self.downloading = None
        self.status.setText("Download cancelled" if code == "cancelled" else message)
        self._buttons()
