# Runs inside real GIMP 3 (gimp-console-3.0 --batch-interpreter python-fu-eval): loads a
# portrait, selects a region, calls the installed Limner procedure non-interactively as a
# script would, saves the image as XCF and writes what it finds for the test to check.
# The spec's path comes in LIMNER_GIMP_SPEC:
#   {"image", "precision" (Gimp.Precision name or null), "selection" [x, y, w, h] or null,
#    "layer_offset" [x, y], "procedure", "args" {name: value}, "out",
#    "export" (a file name to export the image to, optional),
#    "hints" {argument: [x, y, w, h] selected and saved as a channel} (optional),
#    "edits" [[argument, value], ...]: made one by one after the plug-in's own dialog wiring
#    (arguments.follow_implied) is connected to the config, as a user changes controls
#    (optional), "report" [argument, ...]: their values after the edits (optional),
#    "profile": an ICC file assigned to the image before anything else (optional)}
# Pixels are read and written in the image's own colour space, as its numbers are.
import glob
import json
import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
from gi.repository import Babl, Gegl, Gimp, Gio


def argument_value(value):
    if isinstance(value, str) and value.startswith("#"):   # a colour argument
        return Gegl.Color.new(value)
    if isinstance(value, str) and value.startswith("/"):   # a file argument
        return Gio.File.new_for_path(value)
    return value

spec = json.load(open(os.environ["LIMNER_GIMP_SPEC"]))
out = spec["out"]
findings = {}
try:
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(spec["image"]))
    if spec.get("profile"):
        image.set_color_profile(Gimp.ColorProfile.new_from_file(
            Gio.File.new_for_path(spec["profile"])))
    if spec.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, spec["precision"]))
    babl = {"u8": "u8", "u16": "u16"}.get(image.get_precision().value_nick.split("-")[0],
                                           "float")
    source = image.get_layers()[0]
    source.add_alpha()
    source.set_offsets(*spec["layer_offset"])
    w, h = source.get_width(), source.get_height()

    def pixels(drawable, fmt):
        if fmt.startswith("R'G'B'A"):              # in the image's space, no conversion
            fmt = Babl.get_name(Babl.format_with_space(fmt, drawable.get_format()))
        return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, drawable.get_width(),
                                                                  drawable.get_height()),
                                               1.0, fmt, Gegl.AbyssPolicy.CLAMP))

    before = pixels(source, f"R'G'B'A {babl}")
    hints = {}
    for name, box in (spec.get("hints") or {}).items():   # a selection saved as a channel
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *box)
        hints[name] = Gimp.Selection.save(image)
    Gimp.Selection.none(image)
    if spec["selection"]:
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *spec["selection"])
    procedure = Gimp.get_pdb().lookup_procedure(spec["procedure"])
    findings["registered"] = procedure is not None
    findings["menu"] = list(procedure.get_menu_paths()) if procedure else []
    findings["label"] = procedure.get_menu_label() if procedure else None
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    on_image = config.find_property("image") is not None     # not so: Models…
    if on_image:
        config.set_property("image", image)
        config.set_core_object_array("drawables", [source])
    for name, value in spec["args"].items():
        config.set_property(name, argument_value(value))
    if spec.get("edits"):              # the installed plug-in's own modules, as GIMP runs them
        plug_in = glob.glob(os.path.expanduser("~/.config/GIMP/*/plug-ins/limner_gimp"))[0]
        sys.path[:0] = [plug_in, os.path.join(plug_in, "vendor")]
        from arguments import follow_implied
        from gimpio import installed_capabilities
        from names import procedure_name

        op = next(o for o in installed_capabilities().operations
                  if procedure_name(o.id) == spec["procedure"])
        follow_implied(config, op)
        for name, value in spec["edits"]:
            config.set_property(name, argument_value(value))
    findings["report"] = {name: str(config.get_property(name))
                          for name in spec.get("report") or []}
    for name, channel in hints.items():
        config.set_property(name, channel)
    result = procedure.run(config)
    findings["status"] = result.index(0).value_nick
    if findings["status"] != "success":
        findings["error"] = str(result.index(1))
    findings["source_unchanged"] = pixels(source, f"R'G'B'A {babl}") == before
    findings["profile"] = image.get_effective_color_profile().get_label()
    findings["sample"] = babl
    findings["layers"] = []
    for i, layer in enumerate(image.get_layers()):     # top first
        _, x, y = layer.get_offsets()
        entry = {"name": layer.get_name(), "offset": [x, y], "size": [layer.get_width(),
                                                                      layer.get_height()],
                 "visible": layer.get_visible(), "mode": layer.get_mode().value_nick,
                 "pixels": f"{out}/layer{i}.raw", "mask": None}
        open(entry["pixels"], "wb").write(pixels(layer, f"R'G'B'A {babl}"))
        parasite = layer.get_parasite("limner-provenance")
        entry["provenance"] = json.loads(bytes(parasite.get_data()).decode()) \
            if parasite is not None else None
        if layer.get_mask() is not None:
            entry["mask"] = f"{out}/mask{i}.raw"
            open(entry["mask"], "wb").write(pixels(layer.get_mask(), "Y u8"))
        findings["layers"].append(entry)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(f"{out}/result.xcf"),
                   None)
    findings["saved"] = os.path.exists(f"{out}/result.xcf")
    if spec.get("export"):             # as File > Export As… PNG, with "Save XMP data" on
        exporter = Gimp.get_pdb().lookup_procedure("file-png-export")
        export = exporter.create_config()
        export.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
        export.set_property("image", image)
        export.set_property("file", Gio.File.new_for_path(f"{out}/{spec['export']}"))
        export.set_property("include-xmp", True)
        findings["export"] = exporter.run(export).index(0).value_nick
except Exception as exc:  # noqa: BLE001 - the test reads the failure from the file
    findings["exception"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
json.dump(findings, open(f"{out}/findings.json", "w"), indent=1)
