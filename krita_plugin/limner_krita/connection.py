"""The backend connection, off Krita's GUI thread: connecting (and starting the backend
when none runs) and each job run in a worker thread; results and progress come back as Qt
signals, which Qt delivers on the GUI thread. Previews and model downloads go over
connections of their own, so neither waits for, nor blocks, a full run."""

from __future__ import annotations

import threading
import uuid

from .controller import Request, State
from .qt import QtCore, Signal


class Backend(QtCore.QObject):
    state_changed = Signal(str, str)       # a State, message
    not_installed = Signal(str, object)    # what to do, the installer's command (or None)
    capabilities_ready = Signal(object)    # the welcome's capabilities
    progress = Signal(float, str)
    finished = Signal(object, object)      # the request, the result layers
    failed = Signal(str, str)              # error code, message
    preview_ready = Signal(str, object, object)   # job, the preview's Pixels, provenance
    preview_failed = Signal(str, str, str)  # job, error code, message
    pull_progress = Signal(str, float, str)  # model, fraction, stage
    pull_done = Signal(str, str)           # model, where it now is
    pull_failed = Signal(str, str, str)    # model, error code, message

    #: the long side of a live preview in the docker (one on the canvas is as large as
    #: the layer looks there); a preview works at its source's size
    PREVIEW_SIDE = 512

    def __init__(self, client_name: str, parent=None):
        super().__init__(parent)
        self.client_name = client_name
        self.client = None
        self.job: str | None = None
        self._lock = threading.Lock()
        self.preview_client = None
        self._preview_lock = threading.Lock()
        self.pulling: tuple[object, str] | None = None     # (client, job) of a download
        self.installing = False                  # the installer runs (install_async)

    def connect_async(self) -> None:
        threading.Thread(target=self._connect_guarded, daemon=True).start()

    def install_async(self, installer: list[str]) -> None:
        """Run the backend's installer again (NotInstalled named it), then connect."""
        if self.installing:
            return
        self.installing = True
        threading.Thread(target=self._install, args=(installer,), daemon=True).start()

    def _install(self, installer: list[str]) -> None:
        import time

        from limner import launcher

        started = time.monotonic()
        self.state_changed.emit(State.INSTALLING, "")
        try:
            process = launcher.run_installer(installer)
            while process.poll() is None:
                self.state_changed.emit(State.INSTALLING, f"{time.monotonic() - started:.0f} s")
                time.sleep(1)
        except OSError as exc:
            self.not_installed.emit(f"the installer could not start: {exc}", installer)
            return
        finally:
            self.installing = False
        if process.returncode != 0:
            self.not_installed.emit(f"the installer failed (exit code {process.returncode}); "
                                    "see installer.log in Limner's state folder", installer)
            return
        self._connect_guarded()

    def run_async(self, request: Request) -> str:
        """Start a job; returns its id (for cancel)."""
        self.job = request.job = uuid.uuid4().hex[:12]
        threading.Thread(target=self._run, args=(request,), daemon=True).start()
        return self.job

    def cancel(self) -> None:
        with self._lock:
            client, job = self.client, self.job
        if client is not None and job is not None:
            try:
                client.cancel(job)
            except Exception as exc:  # noqa: BLE001 - the connection may be gone already
                from limner import protocol

                self.failed.emit(protocol.E_CLOSED, str(exc))

    def preview_async(self, request: Request) -> str:
        """A quick preview of `request` (its layer already small); returns its job id."""
        request.job = uuid.uuid4().hex[:12]
        threading.Thread(target=self._preview, args=(request,), daemon=True).start()
        return request.job

    def cancel_preview(self, job: str) -> None:
        client = self.preview_client
        if client is not None:
            try:
                client.cancel(job)
            except Exception:  # noqa: BLE001 - gone already: nothing to stop
                pass

    def _preview(self, request: Request) -> None:
        from limner import launcher, protocol
        from limner.client import BackendError, Client

        source = request.source
        try:
            with self._preview_lock:       # one preview at a time on its connection
                if self.preview_client is None:
                    self.preview_client = Client.from_info(
                        launcher.ensure_running("krita"),
                        name=self.client_name + " (preview)")
                layers = self.preview_client.run(
                    request.op, request.params, source.pixels, mask=source.mask,
                    offset=source.offset, inputs=request.inputs, transfer=source.transfer,
                    preview_side=max(16, source.pixels.width, source.pixels.height),
                    job=request.job)
        except BackendError as exc:
            if exc.code in (protocol.E_CLOSED, protocol.E_UNREACHABLE):
                self.preview_client = None
            self.preview_failed.emit(request.job, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - shown in the docker, never raised into Krita
            self.preview_client = None
            self.preview_failed.emit(request.job, "error", f"{type(exc).__name__}: {exc}")
        else:
            self.preview_ready.emit(request.job, layers[0][1], layers[0][0].provenance)

    def pull_async(self, model: str) -> None:
        """Download a model on the backend (on a connection of its own)."""
        threading.Thread(target=self._pull, args=(model,), daemon=True).start()

    def cancel_pull(self) -> None:
        pulling = self.pulling
        if pulling is not None:
            try:
                pulling[0].cancel(pulling[1])
            except Exception:  # noqa: BLE001 - gone already: nothing to stop
                pass

    def _pull(self, model: str) -> None:
        from limner import launcher
        from limner.client import BackendError, Client

        job = uuid.uuid4().hex[:12]
        try:
            info = launcher.ensure_running("krita")
            with Client.from_info(info, name=self.client_name + " (models)") as client:
                self.pulling = (client, job)
                path = client.pull(model, job=job, on_progress=lambda _, fraction, stage:
                                   self.pull_progress.emit(model, fraction, stage))
                self.pulling = None
                self.pull_done.emit(model, path)
            with Client.from_info(info, name=self.client_name + " (models)") as fresh:
                self.capabilities_ready.emit(fresh.capabilities)    # the model is here now
        except BackendError as exc:
            self.pull_failed.emit(model, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - shown in the dialog, never raised into Krita
            self.pull_failed.emit(model, "error", f"{type(exc).__name__}: {exc}")
        finally:
            self.pulling = None

    def _connect_guarded(self) -> None:
        from limner.launcher import NotInstalled

        try:
            self._connect()
        except NotInstalled as exc:
            self.not_installed.emit(str(exc), exc.installer)
        except Exception as exc:  # noqa: BLE001 - shown in the docker, never raised into Krita
            self.state_changed.emit(State.ERROR, str(exc))

    def reconnect(self) -> None:
        """The server changed (the studio setting): drop both connections and connect
        anew, in the background."""
        with self._lock:
            old, self.client = self.client, None
        with self._preview_lock:
            preview, self.preview_client = self.preview_client, None
        for client in (old, preview):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - gone already
                    pass
        self.connect_async()

    def _forget_client(self) -> None:
        """The connection is gone: the next job reconnects (and restarts the backend)."""
        with self._lock:
            self.client = None

    def _connect(self):
        from limner import launcher
        from limner.client import Client

        with self._lock:
            if self.client is not None:
                return self.client
            self.state_changed.emit(State.CONNECTING, "")

            def waiting(seconds):
                self.state_changed.emit(State.STARTING, f"{seconds:.0f} s")

            info = launcher.ensure_running("krita", on_wait=waiting)
            self.client = Client.from_info(info, name=self.client_name)
            self.capabilities_ready.emit(self.client.capabilities)
            where = f" (studio server {info['url']})" if info.get("url") else ""
            self.state_changed.emit(State.READY, self.client.server + where)
            return self.client

    def _run(self, request: Request) -> None:
        from limner import protocol
        from limner.client import BackendError
        from limner.launcher import NotInstalled

        source = request.source
        try:
            client = self._connect()
            self.state_changed.emit(State.BUSY, "")
            layers = client.run(request.op, request.params, source.pixels, mask=source.mask,
                                offset=source.offset, inputs=request.inputs,
                                transfer=source.transfer, job=request.job,
                                on_progress=lambda job, f, stage: self.progress.emit(f, stage))
        except BackendError as exc:
            if exc.code in (protocol.E_CLOSED, protocol.E_UNREACHABLE):
                self._forget_client()
            self.failed.emit(exc.code, exc.message)
        except NotInstalled as exc:
            self.failed.emit("not_installed", str(exc))
            self.not_installed.emit(str(exc), exc.installer)
        except Exception as exc:  # noqa: BLE001 - shown in the docker, never raised into Krita
            self._forget_client()
            self.failed.emit("error", f"{type(exc).__name__}: {exc}")
        else:
            self.finished.emit(request, layers)
        finally:
            self.job = None
