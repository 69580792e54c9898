# Limner for GIMP 3: the dialog's live preview, without GIMP (tested without it).
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""A dialog's previews, one at a time off the GUI thread: asks while one runs collapse
into the newest, so a dragged slider gives a steady stream of pictures, never a queue of
stale ones, and a picture is never older than one already shown."""

import threading


class LatestOnly:
    """`run(settings)` makes a preview (in a worker thread); `deliver(result, error)` gets
    each outcome in order (from that thread: a GUI hands it to its main loop)."""

    def __init__(self, run, deliver):
        self.run, self.deliver = run, deliver
        self._lock = threading.Lock()
        self._latest = None
        self._busy = False
        self.asked = self.ran = 0                  # for the tests

    def ask(self, settings) -> None:
        with self._lock:
            self.asked += 1
            self._latest = settings
            if self._busy:
                return                             # the running worker takes it next
            self._busy = True
        threading.Thread(target=self._work, daemon=True).start()

    def idle(self) -> bool:
        with self._lock:
            return not self._busy

    def _work(self) -> None:
        while True:
            with self._lock:
                settings, self._latest = self._latest, None
                if settings is None:
                    self._busy = False
                    return
                self.ran += 1
            try:
                result, error = self.run(settings), None
            except Exception as exc:  # noqa: BLE001 - the dialog shows it instead
                result, error = None, exc
            self.deliver(result, error)
