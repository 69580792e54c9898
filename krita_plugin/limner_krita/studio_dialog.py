"""The studio server setting: where a studio's shared backend is (wss://), the user's
token and the certificate fingerprint to pin; or the local backend. It is the same
owner-only file `limner studio use` writes (discovery.set_studio_setting), so the GIMP
plug-in and the command line see it too. No Krita here (tested offscreen)."""

from __future__ import annotations

from .qt import QtWidgets


class StudioDialog(QtWidgets.QDialog):
    def __init__(self, backend, parent=None):
        super().__init__(parent)
        from limner import discovery

        self.setWindowTitle("Limner: studio server")
        self.setObjectName("limner_studio")
        self.backend = backend
        current = discovery.studio_setting()
        layout = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel("Send jobs to your studio's shared backend instead of one on "
                                 "this computer. Your studio's admin gives you the address, "
                                 "your token and the certificate's fingerprint.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QtWidgets.QFormLayout()
        self.url = QtWidgets.QLineEdit(current["url"] if current else "")
        self.url.setObjectName("studio_url")
        self.url.setPlaceholderText("wss://studio-gpu:7421")
        self.token = QtWidgets.QLineEdit()
        self.token.setObjectName("studio_token")
        self.token.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("kept as it is" if current else "your token")
        self.kept_token = current["token"] if current else ""
        self.fingerprint = QtWidgets.QLineEdit(current["fingerprint"] if current else "")
        self.fingerprint.setObjectName("studio_fingerprint")
        self.fingerprint.setPlaceholderText("SHA-256, as the server prints it (self-signed)")
        form.addRow("Server", self.url)
        form.addRow("Token", self.token)
        form.addRow("Fingerprint", self.fingerprint)
        layout.addLayout(form)
        self.status = QtWidgets.QLabel("Now: " + (f"the studio server at {current['url']}"
                                                  if current else "the local backend"))
        self.status.setObjectName("studio_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QtWidgets.QHBoxLayout()
        self.use_button = QtWidgets.QPushButton("Use studio server")
        self.use_button.setObjectName("use_studio")
        self.local_button = QtWidgets.QPushButton("Use local backend")
        self.local_button.setObjectName("use_local")
        close = QtWidgets.QPushButton("Close")
        self.use_button.clicked.connect(self.use_studio)
        self.local_button.clicked.connect(self.use_local)
        close.clicked.connect(self.close)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.local_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.resize(560, 240)

    def use_studio(self) -> None:
        from limner import discovery

        token = self.token.text().strip() or self.kept_token
        try:
            discovery.set_studio_setting(self.url.text().strip(), token,
                                         self.fingerprint.text().strip())
        except (ValueError, OSError) as exc:
            self.status.setText(str(exc))
            return
        self.kept_token = token
        self.token.clear()
        self.token.setPlaceholderText("kept as it is")
        self.status.setText(f"Now: the studio server at {self.url.text().strip()}; connecting…")
        self.backend.reconnect()

    def use_local(self) -> None:
        from limner import discovery

        discovery.set_studio_setting("", "")
        self.kept_token = ""
        self.token.setPlaceholderText("your token")
        self.status.setText("Now: the local backend; connecting…")
        self.backend.reconnect()
