# Limner for GIMP 3: the plug-in's helpers that need no GIMP, so they are tested without it.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""Names of GIMP procedures and arguments made from the backend's schema, and whether the
schema installed beside the plug-in still matches the running backend's."""

import re

PREFIX = "plug-in-limner-"
#: arguments every image procedure already has
RESERVED = {"run-mode", "image", "drawables"}


def argument_name(param_name):
    """GIMP argument names are lower case with dashes; a parameter named like one of the
    procedure's own arguments gets a prefix."""
    name = param_name.replace("_", "-")
    return f"limner-{name}" if name in RESERVED else name


def choice_nick(value):
    """A GIMP choice's nick: lower case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")


def procedure_name(op_id):
    return PREFIX + op_id.replace(".", "-")


def schema_difference(installed, backend):
    """None when the operations GIMP registered (from the installed capabilities.json) are
    the backend's (both limner.schema.Capabilities); otherwise what differs, in words.
    Only the operations count: engines and models change as weights are installed, and
    the procedures do not depend on them."""
    ours = {op.id: op for op in installed.operations}
    theirs = {op.id: op for op in backend.operations}
    added = sorted(set(theirs) - set(ours))
    gone = sorted(set(ours) - set(theirs))
    changed = sorted(i for i in set(ours) & set(theirs) if ours[i] != theirs[i])
    parts = [f"{label}: {', '.join(ids)}" for label, ids in
             (("new operations", added), ("removed operations", gone),
              ("changed operations", changed)) if ids]
    return "; ".join(parts) or None
