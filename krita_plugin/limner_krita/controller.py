"""The docker's logic without Krita (so it is tested offscreen with the panel): the
backend's states, the request a Run builds from the panel's values and the layers it
reads, and the one pending request until its layers are in or it failed."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class State(str, enum.Enum):
    """Where the docker stands with the backend (a str, so Qt signals carry it)."""

    CONNECTING = "connecting"
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    ERROR = "error"
    NOT_INSTALLED = "not-installed"     # no backend answers and none can be started
    INSTALLING = "installing"           # the installer runs again, from the docker


class UnsupportedLayer(Exception):
    """The active node (or a layer a parameter names) is not something Limner can work on;
    the message says why."""


@dataclass(frozen=True)
class Source:
    """A layer as read from the editor: its pixels (protocol RGBA), the selection over it
    (8-bit, None for none), where it sits, and whether its samples are linear light."""

    pixels: object                    # limner.protocol.Pixels
    mask: bytes | None = None
    offset: tuple[int, int] = (0, 0)
    transfer: str = "srgb"


@dataclass
class Request:
    """One run: what the backend needs, and the title of the group its layers go in."""

    op: str
    params: dict
    source: Source
    inputs: dict = field(default_factory=dict)      # parameter name -> Pixels
    title: str = ""
    job: str | None = None


class Controller:
    """Owns the pending request. `read(layer_name, over)` reads a layer from the editor
    (None: the active one, with the selection; `over`: that one's Source, for a mask
    painted over it, read over its rectangle at its size) and raises UnsupportedLayer."""

    def __init__(self):
        self.pending: tuple[Request, object] | None = None   # and the caller's context

    def build(self, op, values: dict,
              read: Callable[[str | None, Source | None], Source | None]) -> Request:
        """The request for operation `op` (a limner.schema.OperationSpec) with the panel's
        `values`: an image parameter naming a layer, ("layer", name), becomes an extra
        layer (a hint's read over the source layer)."""
        source = read(None, None)
        over = {param.name for param in op.layers() if param.over_layer}
        params, inputs = {}, {}
        for name, value in values.items():
            if isinstance(value, tuple):
                read_as = read(value[1], source if name in over else None)
                if read_as is not None:
                    inputs[name] = read_as.pixels
            else:
                params[name] = value
        key = params.get("preset") or params.get("engine") or ""
        title = f"Limner: {op.label}" + (f" ({key})" if key else "")
        return Request(op.id, params, source, inputs, title)

    def start(self, request: Request, context: object = None) -> bool:
        """Take a request as the pending one; False while another is pending."""
        if self.pending is not None:
            return False
        self.pending = (request, context)
        return True

    def finish(self) -> tuple[Request, object]:
        """The pending request and its context, no longer pending."""
        pending, self.pending = self.pending, None
        return pending
