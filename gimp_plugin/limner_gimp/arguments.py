# Limner for GIMP 3: the backend's parameters as GIMP procedure arguments.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""One table from a parameter's kind (limner.schema.Kind) to its GIMP argument: how it
is declared (and so which control GIMP's procedure dialog shows), how a config's value
becomes the backend's, and how a value the backend gives (a default, a preset) goes back
into the config. A new kind is one row here."""

from dataclasses import dataclass
from typing import Any, Callable

from gi.repository import Gegl, Gimp, Gio, GObject
from gimpio import colour_hex, read_drawable, read_over
from limner.schema import Kind
from names import argument_name, choice_nick

FLAGS = GObject.ParamFlags.READWRITE


@dataclass(frozen=True)
class Argument:
    """declare(procedure, name, label, blurb, param); read(config value, param) -> the
    backend's value; write(backend value, param) -> the config's."""

    declare: Callable[..., None]
    read: Callable[[Any, Any], Any] = lambda value, param: value
    write: Callable[[Any, Any], Any] = lambda value, param: value


def _declare_choice(procedure, name, label, blurb, param):
    choice = Gimp.Choice.new()
    for index, value in enumerate(param.choices):
        choice.add(choice_nick(value), index, str(value), "")
    procedure.add_choice_argument(name, label, blurb, choice, choice_nick(param.default), FLAGS)


ARGUMENTS = {
    Kind.FLOAT: Argument(
        lambda proc, name, label, blurb, p: proc.add_double_argument(
            name, label, blurb, p.clamp(-1e9), p.clamp(1e9), p.default, FLAGS),
        write=lambda value, p: float(p.clamp(value))),
    Kind.INT: Argument(
        lambda proc, name, label, blurb, p: proc.add_int_argument(
            name, label, blurb, p.clamp(-2 ** 31), p.clamp(2 ** 31 - 1), p.default, FLAGS),
        write=lambda value, p: p.clamp(value)),
    Kind.BOOL: Argument(
        lambda proc, name, label, blurb, p: proc.add_boolean_argument(
            name, label, blurb, p.default, FLAGS)),
    Kind.CHOICE: Argument(
        _declare_choice,
        read=lambda value, p: {choice_nick(c): c for c in p.choices}[value],
        write=lambda value, p: choice_nick(value)),
    # GIMP 3.0.4 hands colour arguments to a new config as transparent black whatever
    # default is given here; run() puts the schema's default back (fill_colour_defaults)
    Kind.COLOR: Argument(
        lambda proc, name, label, blurb, p: proc.add_color_argument(
            name, label, blurb, False, Gegl.Color.new(p.default), FLAGS),
        read=lambda value, p: colour_hex(value),
        write=lambda value, p: Gegl.Color.new(value)),
    Kind.TEXT: Argument(               # an unset string argument arrives as None
        lambda proc, name, label, blurb, p: proc.add_string_argument(
            name, label, blurb, p.default, FLAGS),
        read=lambda value, p: value or ""),
    Kind.FILE: Argument(                # GIMP's own file chooser in the dialog
        lambda proc, name, label, blurb, p: proc.add_file_argument(
            name, label, blurb, Gimp.FileChooserAction.OPEN, True, None, FLAGS),
        read=lambda value, p: (value.get_path() or "") if value is not None else "",
        write=lambda value, p: Gio.File.new_for_path(value) if value else None),
    Kind.IMAGE: Argument(              # a layer of an open image, sent as an extra layer
        lambda proc, name, label, blurb, p: proc.add_drawable_argument(
            name, label, blurb + " (a layer of an open image)", True, FLAGS)),
}


def declare(procedure, param):
    """The GIMP argument (and so the dialog control) for one parameter."""
    ARGUMENTS[param.kind].declare(procedure, argument_name(param.name), param.label,
                                  param.help, param)


def set_value(config, param, value):
    """A backend value (a default, a preset's) into the config."""
    config.set_property(argument_name(param.name), ARGUMENTS[param.kind].write(value, param))


def fill_colour_defaults(op, config):
    """Unset (fully transparent) colour arguments get the operation's default colour."""
    for param in op.params:
        if param.kind is Kind.COLOR:
            value = config.get_property(argument_name(param.name))
            if value is None or value.get_rgba()[3] == 0:
                set_value(config, param, param.default)


def values(op, config):
    """The backend's values of the operation's parameters that are not layers."""
    return {param.name: ARGUMENTS[param.kind].read(
        config.get_property(argument_name(param.name)), param)
        for param in op.params if not param.is_layer}


def parameters(op, config, source, side=None):
    """The backend's parameters from the procedure's config, and the layers image
    parameters name (a hint read over `source`, the drawable worked on; with `side`, at
    a preview's size)."""
    inputs = {}
    for param in op.layers():
        value = config.get_property(argument_name(param.name))
        if value is not None:
            inputs[param.name] = read_over(value, source, side) if param.over_layer else \
                read_drawable(value, with_selection=False, side=side).pixels
    return values(op, config), inputs


def follow_implied(config, op):
    """Picking a choice that implies other values (a lighting setup, a mood's recipe), or
    a file that does (a LUT file: the look), puts them into the other arguments."""
    for param in op.params:
        def apply(*_, param=param):
            value = config.get_property(argument_name(param.name))
            if param.is_layer:                       # a layer picked (or none)
                value = "layer" if value is not None else ""
            else:
                value = ARGUMENTS[param.kind].read(value, param)
            for name, implied in op.implied(param.name, value).items():
                set_value(config, op.param(name), implied)

        config.connect(f"notify::{argument_name(param.name)}", apply)
