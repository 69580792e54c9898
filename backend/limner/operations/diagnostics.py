"""diagnostics.echo: hands the layer straight back. It measures the transport alone
(benchmarks, plug-in self-tests) and is hidden from the editors' menus."""

from __future__ import annotations

from .base import Layer, Operation, Request


def echo(req: Request) -> list[Layer]:
    req.progress(1.0, "echo")
    return [Layer("Echo", req.image)]


OPERATIONS = [Operation("diagnostics.echo", "Echo", "Return the layer unchanged (transport "
                        "check).", [], echo, hidden=True)]
