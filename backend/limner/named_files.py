"""Files a parameter or the command line names (a LUT, a backdrop, a reference picture, a
mask, the picture `limner run` and `batch` read): opened only if they are regular files
(a FIFO would block the only worker for ever, a device would never end), without
blocking, and bounded in size before anything is read. Every way of failing gives the
same answer, which names the file and never shows what is in it, so a client learns
nothing about a file it cannot use.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from . import protocol
from .protocol import ProtocolError


def cannot_read(path, what: str, limit: int) -> ProtocolError:
    return ProtocolError(protocol.E_BAD_PARAMETER,
                         f"{what}: cannot read {protocol.shown(str(path))}: it is missing, "
                         f"not a regular file, not readable, or larger than "
                         f"{limit / (1 << 20):.0f} MB")


@contextlib.contextmanager
def opened(path, what: str, limit: int) -> Iterator[tuple[BinaryIO, str]]:
    """(the file open for reading in binary, a path to that same open file for libraries
    that take a path: on Linux /proc/self/fd/N, so nothing can be swapped in between)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(os.fspath(path), flags)
    except (OSError, ValueError, TypeError):
        raise cannot_read(path, what, limit) from None
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise cannot_read(path, what, limit) from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        raise cannot_read(path, what, limit)
    same = f"/proc/self/fd/{fd}"
    with os.fdopen(fd, "rb") as file:
        yield file, same if os.path.exists(same) else os.fspath(path)


def read_bytes(path, what: str, limit: int) -> bytes:
    """The whole of a named file, if it is a regular file of at most `limit` bytes."""
    with opened(path, what, limit) as (file, _):
        try:
            data = file.read(limit + 1)
        except OSError:
            raise cannot_read(path, what, limit) from None
    if len(data) > limit:                    # it grew after it was looked at
        raise cannot_read(path, what, limit)
    return data
