"""Live previews: each change to the controls asks for a preview, and the asks are
coalesced so that a dragged light gives a steady stream of pictures, not a queue of stale
ones: at most one preview is in flight, changes meanwhile collapse into one next request
with the newest settings, and a picture older than one already shown is never shown.
No Krita here (tested offscreen against the real backend)."""

from __future__ import annotations

from collections.abc import Callable

from .controller import Request, UnsupportedLayer
from .qt import QtCore


class Previewer(QtCore.QObject):
    """`build()` gives the preview's Request (its layer read small) or None; `show(pixels,
    provenance)` puts a preview on screen; `tell(message)` says why there is none.
    `warm()`, asked when the previews have caught up, may give a Request whose result is
    not shown: it has the backend work out what a coming preview will need (the docker
    warms the smaller size it asks for while a light is dragged)."""

    def __init__(self, backend, build: Callable[[], Request | None],
                 show: Callable[[object, dict], None], tell: Callable[[str], None],
                 interval_ms: int = 40, parent=None,
                 warm: Callable[[], Request | None] = lambda: None):
        super().__init__(parent)
        self.backend, self.build, self.show, self.tell = backend, build, show, tell
        self.warm = warm
        self.warming = False             # the one in flight is a warm-up
        self.timer = QtCore.QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._send)
        backend.preview_ready.connect(self._ready)
        backend.preview_failed.connect(self._failed)
        self.in_flight: str | None = None
        self.wanted = False
        # for the tests and the benchmark: how many were asked for, sent and shown, how
        # the others ended (by error code, "stale" for one stopped meanwhile), and the
        # last sent and shown (what is on screen is the latest light when they agree)
        self.asked = self.sent = self.shown = 0
        self.ended: dict[str, int] = {}
        self.last_sent = self.last_shown = None

    def schedule(self) -> None:
        """The controls changed: a preview soon (asks within the interval are one)."""
        self.asked += 1
        if not self.timer.isActive():
            self.timer.start()

    def stop(self) -> None:
        """No preview now (another operation, or a full run): drop what is waiting and
        stop the one in flight."""
        self.timer.stop()
        self.wanted = self.warming = False
        if self.in_flight is not None:
            self.backend.cancel_preview(self.in_flight)
            self.in_flight = None

    def _send(self) -> None:
        if self.in_flight is not None:
            self.wanted = True             # sent when the one in flight is back
            return
        self.warming = False
        try:
            request = self.build()
        except UnsupportedLayer as exc:
            self.tell(str(exc))
            return
        if request is not None:
            self.in_flight = self.last_sent = self.backend.preview_async(request)
            self.sent += 1

    def _ended(self, how: str) -> None:
        self.ended[how] = self.ended.get(how, 0) + 1

    def _ready(self, job: str, pixels, provenance=None) -> None:
        if job != self.in_flight:
            self._ended("stale")           # stopped meanwhile
            return
        self.in_flight = None
        if self.warming:
            self.warming = False
            self._next()
            return
        self.show(pixels, provenance or {})
        self.shown += 1
        self.last_shown = job
        self._next()

    def _failed(self, job: str, code: str, message: str) -> None:
        if job != self.in_flight:
            self._ended("stale")
            return
        self.in_flight = None
        if self.warming:                   # nothing was shown: nothing to say
            self.warming = False
            self._next()
            return
        self._ended(code)
        if code == "busy":                 # the backend's queue is full: try again soon,
            self.wanted = False            # so the light on screen is still the last one
            self.timer.start()
            return
        if code != "cancelled":
            self.tell(message)
        self._next()

    def _next(self) -> None:
        if self.wanted:
            self.wanted = False
            self._send()
        elif not self.timer.isActive():    # caught up: a warm-up, if one is wanted
            request = self.warm()
            if request is not None:
                self.in_flight = self.backend.preview_async(request)
                self.warming = True
