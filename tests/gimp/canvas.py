# Runs inside real GIMP 3 (gimp-console --batch-interpreter python-fu-eval): the relight
# dialog's preview on the canvas, through the installed plug-in's own CanvasLayer, with
# real previews from the backend. A portrait with a selection; the preview shown for one
# light, then another; then taken away (as Cancel does): the layers, the source's pixels,
# the clean state and the undo stack as they were. Then OK's path: a preview shown and
# taken away, and the procedure run, against the same run on a fresh copy of the picture.
# LIMNER_GIMP_SPEC: {"image", "selection" [x, y, w, h], "lights" [[azimuth, elevation],
# ...], "out"}
import glob
import hashlib
import json
import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
from gi.repository import Gegl, Gimp, Gio

plug_in = glob.glob(os.path.expanduser("~/.config/GIMP/*/plug-ins/limner_gimp"))[0]
sys.path[:0] = [plug_in, os.path.join(plug_in, "vendor")]
from canvas import CANVAS_SIDE, CanvasLayer  # noqa: E402
from gimpio import connect, read_drawable  # noqa: E402

spec = json.load(open(os.environ["LIMNER_GIMP_SPEC"]))
findings = {}


def pixel_hash(drawable):
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, drawable.get_width(),
                                                        drawable.get_height()),
                                     1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP)
    return hashlib.sha1(bytes(data)).hexdigest()


def load():
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(spec["image"]))
    source = image.get_layers()[0]
    source.add_alpha()
    image.select_rectangle(Gimp.ChannelOps.REPLACE, *spec["selection"])
    image.clean_all()                  # as a picture just opened
    return image, source


def state(image, source):
    return {"layers": [layer.get_name() for layer in image.get_layers()],
            "source": pixel_hash(source), "dirty": image.is_dirty(),
            "undo_enabled": image.undo_is_enabled()}


def relight(image, source):
    """OK's run: the procedure with the lights of the first preview."""
    procedure = Gimp.get_pdb().lookup_procedure("plug-in-limner-relight")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [source])
    config.set_property("azimuth", spec["lights"][0][0])
    config.set_property("elevation", spec["lights"][0][1])
    status = procedure.run(config).index(0).value_nick
    return status, [[layer.get_name(), pixel_hash(layer)] for layer in image.get_layers()]


try:
    image, source = load()
    findings["before"] = state(image, source)
    canvas = CanvasLayer(image, source)
    with connect() as client:
        small = read_drawable(source, side=CANVAS_SIDE)
        shown = []
        for azimuth, elevation in spec["lights"]:
            layers = client.run("relight", {"azimuth": azimuth, "elevation": elevation},
                                small.pixels, mask=small.mask,
                                preview_side=max(small.pixels.width, small.pixels.height))
            canvas.show(layers[0][1])
            preview = canvas.layer
            _, x, y = preview.get_offsets()
            shown.append({"state": state(image, source), "preview": pixel_hash(preview),
                          "size": [preview.get_width(), preview.get_height()],
                          "offset": [x, y], "visible": preview.get_visible(),
                          "above_source": image.get_item_position(preview)
                          < image.get_item_position(source)})
        findings["shown"] = shown
        findings["source_size"] = [source.get_width(), source.get_height()]
        canvas.remove()
        findings["after_cancel"] = state(image, source)
        # OK: the dialog closes (the preview goes), then the procedure runs
        canvas = CanvasLayer(image, source)
        layers = client.run("relight", {"azimuth": spec["lights"][0][0],
                                        "elevation": spec["lights"][0][1]},
                            small.pixels, mask=small.mask,
                            preview_side=max(small.pixels.width, small.pixels.height))
        canvas.show(layers[0][1])
        canvas.remove()
    findings["applied"] = relight(image, source)
    fresh, fresh_source = load()
    findings["plain"] = relight(fresh, fresh_source)
except Exception as exc:  # noqa: BLE001 - the test reads the failure from the file
    findings["exception"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
json.dump(findings, open(os.path.join(spec["out"], "findings.json"), "w"), indent=1)
