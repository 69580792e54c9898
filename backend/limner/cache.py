"""What engines work out about a layer (face geometry, the photo's light), kept in memory
so the next run on the same pixels skips it: moving a light is then only shading.

Entries are keyed by a hash of the layer's pixels and selection, held in a bounded LRU,
and belong to the connections that used them: when the last of those closes, the entry
goes. Nothing is ever written to disk (faces are personal data).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

#: what a layer's work costs to keep, at 2048 px: its geometry for relight ~30 MB, a matte
#: 16, skin 16, a cut-out's colours 48; 256 MB holds a few such layers, and keeps the
#: backend's peak after every operation at 2048 px under 1.5 GB (bench_backend)
DEFAULT_LIMIT_BYTES = 256 << 20


def layer_key(image: np.ndarray, mask: np.ndarray | None, *extra) -> str:
    """A digest of a layer's pixels (and geometry and sample type), its selection and any
    `extra` settings the cached work depends on."""
    digest = hashlib.blake2b(digest_size=20)
    for array in (image, mask):
        if array is not None:
            digest.update(f"{array.shape}{array.dtype.str}".encode())
            digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    digest.update(repr(extra).encode())
    return digest.hexdigest()


def size_of(value) -> int:
    """Bytes held by the arrays in a value (dataclasses, tuples, lists and dicts of them)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if dataclasses.is_dataclass(value):
        return sum(size_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return sum(size_of(v) for v in value)
    if isinstance(value, dict):
        return sum(size_of(v) for v in value.values())
    return 0


class LayerCache:
    def __init__(self, limit_bytes: int = DEFAULT_LIMIT_BYTES):
        self.limit_bytes = limit_bytes
        self._entries: OrderedDict[Hashable, tuple[object, int, set]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.builds = 0             # for the logs and the studio's replicas

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return sum(size for _, size, _ in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list:
        with self._lock:
            return list(self._entries)

    def get(self, key: Hashable, owner: Hashable | None, build: Callable[[], object]):
        """The cached value for `key`, else `build()` stored under it (when it fits). The
        owner (a connection) joins the entry's owners; None owns nothing and keeps
        nothing (a one-off run)."""
        with self._lock:
            if key in self._entries:
                value, size, owners = self._entries[key]
                self._entries.move_to_end(key)
                if owner is not None:
                    owners.add(owner)
                self.hits += 1
                return value
        value = build()                         # outside the lock: it takes a while
        self.builds += 1
        if owner is None:
            return value
        size = size_of(value)
        with self._lock:
            if size <= self.limit_bytes:
                self._entries[key] = (value, size, {owner})
                self._shrink()
        return value

    def release(self, owner: Hashable) -> None:
        """`owner` closed: forget every entry no one else still uses."""
        with self._lock:
            for key in list(self._entries):
                owners = self._entries[key][2]
                owners.discard(owner)
                if not owners:
                    del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _shrink(self) -> None:
        used = sum(size for _, size, _ in self._entries.values())
        while used > self.limit_bytes and self._entries:
            _, (_, size, _) = self._entries.popitem(last=False)   # least recently used
            used -= size


#: the backend's one cache (the worker owns the models, and this with them)
LAYERS = LayerCache()
