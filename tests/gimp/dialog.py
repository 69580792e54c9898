# Runs inside real GIMP 3 with its GUI (under Xvfb): opens the portrait in a window,
# selects a region and calls the Limner relight procedure interactively, as the menu does,
# so its dialog (live preview beside the controls and on the canvas, the light sphere)
# stays open for the test to photograph and drive with the mouse and keyboard. Writes
# what the image held before the dialog opened and after it closed (LIMNER_OUT).
# LIMNER_IMAGE: the portrait.
import hashlib
import json
import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio


def state(image, source):
    data = source.get_buffer().get(Gegl.Rectangle.new(0, 0, source.get_width(),
                                                      source.get_height()),
                                   1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP)
    return {"layers": [layer.get_name() for layer in image.get_layers()],
            "source": hashlib.sha1(bytes(data)).hexdigest(), "dirty": image.is_dirty(),
            "undo_enabled": image.undo_is_enabled()}


out = os.environ["LIMNER_OUT"]
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE,
                       Gio.File.new_for_path(os.environ["LIMNER_IMAGE"]))
layer = image.get_layers()[0]
image.select_rectangle(Gimp.ChannelOps.REPLACE, 120, 100, 260, 260)
image.clean_all()
Gimp.Display.new(image)
found = {"before": state(image, layer)}
procedure = Gimp.get_pdb().lookup_procedure("plug-in-limner-relight")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [layer])
found["status"] = procedure.run(config).index(0).value_nick
found["after"] = state(image, layer)
json.dump(found, open(out, "w"))
