#!/usr/bin/env python3
# Limner for GIMP 3: AI portrait retouching through the local Limner backend.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""One image procedure per backend operation (Filters > Limner > …), registered from the
copy of the backend's capabilities that the installer writes beside this file, so a new
operation or parameter needs no change here. Each procedure reads the drawable (at the
image's own precision, perceptual sRGB) and the selection, runs the operation on the
backend (starting it when none runs), and inserts the result layers above the source in
one undo group. Every procedure also runs non-interactively with its arguments. When the
backend's operations differ from the installed copy, it says to re-run the installer.
Filters > Limner > Models… lists and downloads the models; Studio Server… sets a studio's
shared backend (or the local one).

The procedures are here; the arguments (one per parameter kind) in arguments.py; the
dialogs in dialogs.py; pixels and metadata in and out of GIMP in gimpio.py."""

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import Gegl, Gimp, GimpUi, GLib, GObject  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "vendor")]   # the modules beside; the client

from arguments import declare, fill_colour_defaults, follow_implied, parameters  # noqa: E402
from dialogs import DialogPreview, offer_installer, show_engine_controls  # noqa: E402
from gimpio import connect, installed_capabilities, mark_ai_edited, read_drawable, write_layers  # noqa: E402
from models_dialog import ModelsDialog  # noqa: E402
from names import procedure_name, schema_difference  # noqa: E402
from studio_dialog import StudioDialog, use  # noqa: E402

MODELS_PROCEDURE = "plug-in-limner-models"
STUDIO_PROCEDURE = "plug-in-limner-studio-server"


class Limner(Gimp.PlugIn):
    def do_query_procedures(self):
        try:
            offered = installed_capabilities().offered
        except (OSError, ValueError, KeyError) as exc:
            print(f"limner: no capabilities.json beside the plug-in ({exc}); "
                  "run the Limner installer", file=sys.stderr)
            return []
        return [procedure_name(op.id) for op in offered] + [MODELS_PROCEDURE, STUDIO_PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        Gegl.init(None)      # colour defaults are Gegl.Color: without GEGL the query crashes
        if name == MODELS_PROCEDURE:
            return self.models_procedure(name)
        if name == STUDIO_PROCEDURE:
            return self.studio_procedure(name)
        op = next(o for o in installed_capabilities().operations
                  if procedure_name(o.id) == name)
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, op)
        procedure.set_image_types("RGB*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(op.label + "…")
        procedure.add_menu_path("<Image>/Filters/Limner/")
        procedure.set_documentation(op.description, op.description, name)
        procedure.set_attribution("Limner", "Limner authors, GPL-3.0-or-later", "2026")
        for param in op.params:
            declare(procedure, param)
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, op):
        if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
            return self.fail(procedure, "select exactly one layer")
        fill_colour_defaults(op, config)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            GimpUi.init("limner")
            dialog = GimpUi.ProcedureDialog.new(procedure, config, op.label)
            dialog.fill(None)
            try:
                preview = DialogPreview(dialog, config, op, drawables[0])
            except Exception as exc:  # noqa: BLE001 - no preview; the dialog still works
                preview = None
                print(f"limner: no preview: {exc}", file=sys.stderr)
            show_engine_controls(dialog, config, op)      # after the preview's show_all
            follow_implied(config, op)
            accepted = dialog.run()
            dialog.destroy()
            if preview is not None:
                preview.close()
            if not accepted:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        source = drawables[0]
        from limner.launcher import NotInstalled

        try:
            params, inputs = parameters(op, config, source)
            request = read_drawable(source)
            layers = self.call_backend(op, params, inputs, request.pixels, request.mask,
                                       request.offset)
        except NotInstalled as exc:
            if run_mode == Gimp.RunMode.INTERACTIVE and exc.installer:
                offer_installer(str(exc), exc.installer)
            return self.fail(procedure, str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user as a message
            return self.fail(procedure, str(exc))
        image.undo_group_start()
        try:
            write_layers(image, source, layers, request.babl)
            mark_ai_edited(image, layers)
        finally:
            image.undo_group_end()
        Gimp.displays_flush()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    def models_procedure(self, name):
        procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_models,
                                       None)
        procedure.set_menu_label("Models…")
        procedure.add_menu_path("<Image>/Filters/Limner/")
        procedure.set_documentation("The models of Limner's high-quality engines: list and "
                                    "download", "Non-interactively: model names one to "
                                    "download, or is empty to list them.", name)
        procedure.set_attribution("Limner", "Limner authors, GPL-3.0-or-later", "2026")
        procedure.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                    Gimp.RunMode.NONINTERACTIVE, GObject.ParamFlags.READWRITE)
        procedure.add_string_argument("model", "Model", "A model to download ('' lists "
                                      "them)", "", GObject.ParamFlags.READWRITE)
        return procedure

    def run_models(self, procedure, config, _data):
        try:
            with connect() as client:
                models = client.capabilities.models
                if config.get_property("run-mode") == Gimp.RunMode.INTERACTIVE:
                    GimpUi.init("limner")
                    ModelsDialog(models).run()
                elif config.get_property("model"):
                    name = config.get_property("model")
                    Gimp.progress_init(f"Limner: downloading {name}")

                    def progress(_job, fraction, stage):
                        Gimp.progress_set_text(stage)
                        Gimp.progress_update(fraction)

                    Gimp.message(f"Limner: {name} is here: {client.pull(name, progress)}")
                else:
                    Gimp.message("Limner models:\n" + "\n".join(
                        "  ".join(ModelsDialog.row(model)) for model in models))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user as a message
            return self.fail(procedure, str(getattr(exc, "message", exc)))
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    def studio_procedure(self, name):
        procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_studio,
                                       None)
        procedure.set_menu_label("Studio Server…")
        procedure.add_menu_path("<Image>/Filters/Limner/")
        procedure.set_documentation("Use a studio's shared Limner backend, or the local one",
                                    "Non-interactively: the server (wss://; '' for the local "
                                    "backend), the user's token and the certificate's SHA-256 "
                                    "fingerprint to pin.", name)
        procedure.set_attribution("Limner", "Limner authors, GPL-3.0-or-later", "2026")
        procedure.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                    Gimp.RunMode.NONINTERACTIVE, GObject.ParamFlags.READWRITE)
        for argument, blurb in (("url", "The studio server, wss://HOST:PORT ('': local)"),
                                ("token", "Your token ('': keep the one set)"),
                                ("fingerprint", "The server certificate's SHA-256")):
            procedure.add_string_argument(argument, argument.capitalize(), blurb, "",
                                          GObject.ParamFlags.READWRITE)
        return procedure

    def run_studio(self, procedure, config, _data):
        if config.get_property("run-mode") == Gimp.RunMode.INTERACTIVE:
            GimpUi.init("limner")
            StudioDialog().run()      # its own entries: GIMP would keep the token in clear
            return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
        try:
            Gimp.message(use(*(config.get_property(name).strip()
                               for name in ("url", "token", "fingerprint"))))
        except (ValueError, OSError) as exc:
            return self.fail(procedure, str(exc))
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    @staticmethod
    def call_backend(op, params, inputs, pixels, mask, offset):
        from limner.client import BackendError

        Gimp.progress_init(f"Limner: {op.label}")

        def waiting(seconds):
            Gimp.progress_set_text(f"Starting the Limner backend… {seconds:.0f} s")
            Gimp.progress_pulse()

        def progress(job, fraction, stage):
            Gimp.progress_set_text(f"Limner: {op.label} — {stage}")
            Gimp.progress_update(fraction)

        try:
            with connect(waiting) as client:
                difference = schema_difference(installed_capabilities(), client.capabilities)
                if difference:
                    Gimp.message("Limner: the backend's operations differ from the ones GIMP "
                                 f"registered ({difference}). Re-run the Limner installer "
                                 "(install/setup.py --gimp) and restart GIMP to see them all.")
                return client.run(op.id, params, pixels, mask=mask, offset=offset,
                                  inputs=inputs, on_progress=progress)
        except BackendError as exc:
            raise RuntimeError(f"Limner backend: {exc.message}") from None
        finally:
            Gimp.progress_end()

    @staticmethod
    def fail(procedure, message):
        Gimp.message(f"Limner: {message}")
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error.new_literal(GLib.quark_from_string("limner"),
                                                                  message, 0))


Gimp.main(Limner.__gtype__, sys.argv)
