"""The long-lived backend's log: one line format, and no flood. A client that opens a
thousand bad connections must not write a hundred megabytes of the same line: after a few
of a kind (same logger, same message) in a minute the rest are counted, not written. A
line about one job (logged with `extra={"job": id}`) is its own kind, and errors are
always written: a busy backend's job lines and failures are never lost in the count."""

from __future__ import annotations

import logging
import time

#: records of one kind written per window; the rest are counted
PER_WINDOW = 5
WINDOW_SECONDS = 60.0


class QuietRepeats(logging.Filter):
    def __init__(self, per_window: int = PER_WINDOW, window: float = WINDOW_SECONDS):
        super().__init__()
        self.per_window, self.window = per_window, window
        self._seen: dict[tuple[str, str], list[float | int]] = {}   # start, written, held

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        about_a_job = getattr(record, "job", None) is not None
        key = (record.name, record.getMessage() if about_a_job else str(record.msg))
        now = time.monotonic()
        start, written, held = self._seen.get(key, (now, 0, 0))
        if now - start > self.window:
            start, written = now, 0
            if held:
                record.msg = f"{record.msg} (and {held} like it in the last minute, not shown)"
                held = 0
        if written >= self.per_window:
            self._seen[key] = [start, written, held + 1]
            return False
        self._seen[key] = [start, written + 1, held]
        if len(self._seen) > 10_000:        # kinds are few; an attacker's variety is not
            self._seen.clear()
        return True


def configure(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietRepeats())
