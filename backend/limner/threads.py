"""How many cores the backend's compute may take: by default all but one, so the editor
the retoucher is working in keeps a core while a job runs (`limner serve --threads N`).

NumPy's BLAS and OpenMP size their pools when first imported, so `limner serve` puts the
count in the environment before anything numeric is imported (__main__); OpenCV, torch
and ONNX Runtime are told at run time (`apply`, and `count()` where a session is made).
Standard library only."""

from __future__ import annotations

import os
import sys

#: the environment variables the BLAS and OpenMP runtimes read at start-up
POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_count: int | None = None


def default() -> int:
    """All cores but one (one on a single-core machine)."""
    return max(1, (os.cpu_count() or 1) - 1)


def count() -> int | None:
    """The limit in force (None: the libraries' own choice, as in tests' in-process
    backends)."""
    return _count


def reserve(n: int) -> None:
    """Before the numeric libraries are imported: their pools will have `n` threads."""
    global _count
    _count = max(1, int(n))
    for name in POOL_VARIABLES:
        os.environ[name] = str(_count)


def apply(n: int) -> None:
    """The limit for the libraries that take it at run time (those already imported)."""
    global _count
    _count = max(1, int(n))
    import cv2

    cv2.setNumThreads(_count)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(_count)


def from_command_line(argv: list[str]) -> None:
    """`limner serve [--threads N]`: reserve the pools before any numeric import (a bad
    value is left for the argument parser to report)."""
    if not argv or argv[0] != "serve":
        return
    wanted = default()
    for i, word in enumerate(argv):
        value = word.split("=", 1)[1] if word.startswith("--threads=") else \
            argv[i + 1] if word == "--threads" and i + 1 < len(argv) else None
        if value is not None:
            try:
                wanted = int(value)
            except ValueError:
                return
    if wanted >= 1:
        reserve(wanted)


def main() -> int:
    """The `limner` command: the pools reserved, then the command line."""
    from_command_line(sys.argv[1:])
    from .cli import main as command_line

    return command_line()
