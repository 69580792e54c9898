# Limner for GIMP 3: the dialog's preview on the canvas.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""The preview on GIMP's canvas while the dialog is open, as GIMP's own filters show
theirs: a layer above the source, made, changed and removed with the image's undo frozen
(none of it reaches the undo history), and the image's clean state given back when it
goes, so Cancel leaves nothing behind. The picture comes at preview size; GIMP scales the
layer to the source's (linear: it is a preview)."""

from gi.repository import Gegl, Gimp
from gimpio import in_its_space

#: the long side of a preview shown on the canvas (GIMP does not tell a plug-in its
#: display's zoom: large enough for a screen, small enough to follow a dragged light)
CANVAS_SIDE = 1024


class CanvasLayer:
    NAME = "Limner preview"

    def __init__(self, image, source):
        self.image, self.source = image, source
        self.layer = None
        self.was_dirty = image.is_dirty()
        self.frozen = False
        self.shown = 0                          # pictures shown (the tests read it)

    def show(self, pixels):
        """A preview's pixels (the source's rectangle, RGBA u8 at preview size, in the
        image's space) over the source."""
        if not self.frozen:
            self.image.undo_freeze()
            self.frozen = True
        if self.layer is not None:
            self.image.remove_layer(self.layer)
        layer = Gimp.Layer.new(self.image, self.NAME, pixels.width, pixels.height,
                               Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
        self.image.insert_layer(layer, self.source.get_parent(),
                                self.image.get_item_position(self.source))
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, pixels.width, pixels.height),
                   in_its_space(self.source, "R'G'B'A u8"), bytes(pixels.data))
        buffer.flush()
        width, height = self.source.get_width(), self.source.get_height()
        if (pixels.width, pixels.height) != (width, height):
            Gimp.context_push()
            Gimp.context_set_interpolation(Gimp.InterpolationType.LINEAR)
            layer.scale(width, height, False)
            Gimp.context_pop()
        _, x, y = self.source.get_offsets()
        layer.set_offsets(x, y)
        self.layer = layer
        self.shown += 1
        Gimp.displays_flush()

    def remove(self):
        """The preview gone, the undo history and the clean state as they were."""
        if self.layer is not None:
            self.image.remove_layer(self.layer)
            self.layer = None
        if self.frozen:
            self.image.undo_thaw()
            self.frozen = False
            if not self.was_dirty:
                self.image.clean_all()
        Gimp.displays_flush()
