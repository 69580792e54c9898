# Runs inside real GIMP 3 with its GUI (under Xvfb): opens the portrait in a window and
# calls the Limner relight procedure interactively, as the menu does, so its dialog (with
# the live preview) stays open for the test to photograph. LIMNER_IMAGE: the portrait.
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio

image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE,
                       Gio.File.new_for_path(os.environ["LIMNER_IMAGE"]))
Gimp.Display.new(image)
layer = image.get_layers()[0]
procedure = Gimp.get_pdb().lookup_procedure("plug-in-limner-relight")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [layer])
procedure.run(config)
