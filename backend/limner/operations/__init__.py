"""The operations the backend offers, by id ("background.remove", …), and their schema."""

from __future__ import annotations

from .. import protocol
from ..protocol import ProtocolError
from . import background, diagnostics, grade, mood, relight, style
from .base import Layer, Operation, Param, Request

OPERATIONS: dict[str, Operation] = {op.id: op for module in (background, relight, style, grade,
                                                            mood, diagnostics)
                                    for op in module.OPERATIONS}

__all__ = ["OPERATIONS", "Layer", "Operation", "Param", "Request", "get", "schemas"]


def get(op_id) -> Operation:
    if not isinstance(op_id, str) or op_id not in OPERATIONS:
        offered = ", ".join(op for op, o in OPERATIONS.items() if not o.hidden)
        raise ProtocolError(protocol.E_UNKNOWN_OPERATION,
                            f"unknown operation {protocol.shown(op_id)}; this backend offers "
                            f"{offered}")
    return OPERATIONS[op_id]


def schemas() -> list[dict]:
    return [op.schema() for op in OPERATIONS.values()]
