# Limner for GIMP 3: the plug-in's dialogs.
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""The procedure dialog's additions (only the chosen engine's controls; a preview beside
them and on the canvas, made off the GUI thread, live for an operation with a light; a
light sphere) and the offer to run the installer again (the models dialog is in
models_dialog.py). They read the procedure's config through arguments.py and reach the
backend through gimpio.connect, never through the PlugIn."""

import sphere
from arguments import ARGUMENTS, parameters, set_value, values
from canvas import CANVAS_SIDE, CanvasLayer
from gi.repository import Gdk, GdkPixbuf, Gimp, GimpUi, GLib, GObject, Gtk
from gimpio import connect, read_drawable
from limner.schema import adopted_values, light_markers, sphere_point
from names import argument_name
from previews import LatestOnly

#: the long side of a dialog's preview (one shown on the canvas: CANVAS_SIDE)
PREVIEW_SIDE = 512


def offer_installer(message, installer):
    """No backend, and the installer that made the last one is still there: offer to run
    it again (off GIMP's GUI thread; its output goes to installer.log)."""
    from limner import launcher

    GimpUi.init("limner")
    dialog = Gtk.MessageDialog(message_type=Gtk.MessageType.QUESTION, text=message,
                               title="Limner")
    dialog.add_buttons("Close", Gtk.ResponseType.CLOSE, "Run the installer", Gtk.ResponseType.OK)
    if dialog.run() == Gtk.ResponseType.OK:
        launcher.run_installer(installer)
        Gimp.message("Limner: the installer is running (its output goes to installer.log in "
                     "Limner's state folder); run the filter again when it is done.")
    dialog.destroy()


def show_engine_controls(dialog, config, op):
    """Hide the controls the chosen engine does not read, now and whenever it changes."""
    engine = op.param("engine")
    if engine is None or all(not param.engines for param in op.params):
        return

    def update(*_):
        chosen = ARGUMENTS[engine.kind].read(config.get_property("engine"), engine)
        for param in op.params:
            widget = dialog.get_widget(argument_name(param.name), GObject.TYPE_NONE)
            if widget is not None:
                widget.set_visible(param.read_by(chosen))

    config.connect("notify::engine", update)
    update()


class DialogPreview:
    """A dialog's preview: the main result layer, made again off the GUI thread as the
    parameters change, shown beside the controls and (On canvas, the default) as a
    temporary layer over the source on GIMP's canvas, gone when the dialog closes; live
    for an operation with a light (relight, mood), on request for the others. An
    operation with a light gets a sphere to drag its lights on."""

    SHOWN = 400                        # pixels on screen, long side

    def __init__(self, dialog, config, op, drawable):
        self.config, self.op, self.client, self.drawable = config, op, None, drawable
        self.canvas = CanvasLayer(drawable.get_image(), drawable)
        live = op.has_light
        self.toggle = Gtk.CheckButton.new_with_label("Preview")
        self.toggle.set_active(live)
        self.on_canvas = Gtk.CheckButton.new_with_label("On canvas")
        self.on_canvas.set_active(True)
        self.on_canvas.set_tooltip_text("Show the preview over the layer on the canvas "
                                        "while this dialog is open; OK makes the real "
                                        "layers, Cancel takes it away")
        self.source = read_drawable(drawable, side=self._side())
        self.picture = Gtk.Image()
        self.status = Gtk.Label()
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4)
        self.sphere = LightWidget(config, op) if op.lights() else None
        toggles = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=8)
        toggles.pack_start(self.toggle, False, False, 0)
        toggles.pack_start(self.on_canvas, False, False, 0)
        for widget in (toggles, self.sphere and self.sphere.box, self.picture, self.status):
            if widget is not None:
                box.pack_start(widget, False, False, 0)
        self.status.set_line_wrap(True)
        self.status.set_max_width_chars(40)
        # beside the controls, not under them: relight's are taller than most screens
        area = dialog.get_content_area()
        controls = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
        for child in area.get_children():
            area.remove(child)
            controls.pack_start(child, True, True, 0)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
        row.pack_start(controls, True, True, 0)
        row.pack_start(box, False, False, 0)
        area.pack_start(row, True, True, 0)
        row.show_all()
        self.previews = LatestOnly(self._run, lambda result, error:
                                   GLib.idle_add(self._show, result, error))
        config.connect("notify", self._changed)
        self.toggle.connect("toggled", self._changed)
        self.on_canvas.connect("toggled", self._canvas_toggled)
        self._changed()

    def _side(self):
        return CANVAS_SIDE if self.on_canvas.get_active() else PREVIEW_SIDE

    def _canvas_toggled(self, *_):
        if not self.on_canvas.get_active():
            self.canvas.remove()
        self.source = read_drawable(self.drawable, side=self._side())
        self._changed()

    def _changed(self, *_):
        if self.sphere is not None:
            self.sphere.redraw()
        if self.toggle.get_active():
            self.status.set_text("Working…")
            self.previews.ask((self.source, parameters(self.op, self.config, self.drawable,
                                                       side=self._side())))

    def _run(self, settings):          # in the worker thread
        source, (params, inputs) = settings
        if self.client is None:
            self.client = connect()
        return self.client.run(self.op.id, params, source.pixels, mask=source.mask,
                               inputs=inputs,
                               preview_side=max(source.pixels.width, source.pixels.height))

    def _show(self, result, error):    # in GTK's main loop
        if error is not None:
            self.status.set_text(f"No preview: {getattr(error, 'message', error)}")
            return False
        layer, pixels = result[0]
        if self.sphere is not None:
            self.sphere.placed(layer.provenance)
        if pixels.channels == 4 and pixels.sample == "u8":
            picture = GdkPixbuf.Pixbuf.new_from_bytes(
                GLib.Bytes.new(bytes(pixels.data)), GdkPixbuf.Colorspace.RGB, True, 8,
                pixels.width, pixels.height, pixels.width * 4)
            scale = min(1.0, self.SHOWN / max(pixels.width, pixels.height))
            self.picture.set_from_pixbuf(picture.scale_simple(
                max(1, round(pixels.width * scale)), max(1, round(pixels.height * scale)),
                GdkPixbuf.InterpType.BILINEAR))
            if self.on_canvas.get_active() and self.toggle.get_active():
                self.canvas.show(pixels)
        self.status.set_text("")
        return False

    def close(self):
        """The dialog is closing: the preview leaves the canvas (before OK's real run)."""
        self.toggle.set_active(False)
        self.canvas.remove()
        if self.client is not None:
            self.client.close()


class LightWidget:
    """The sphere beside the controls (sphere.py draws it): dragging a light sets its
    angles in the procedure's config, so the preview follows while dragging. With a named
    setup the markers show where the backend put its lights (the last preview said, turned
    with the face), and dragging one turns the setup into the custom one with every light
    left where the setup had it."""

    SIZE = 180

    def __init__(self, config, op):
        self.config, self.op = config, op
        self.handles = {light.prefix: light for light in op.lights()}
        self.provenance = {}
        self.dragging = None
        self.image = Gtk.Image()
        self.box = Gtk.EventBox()
        self.box.add(self.image)
        self.box.set_tooltip_text("Drag the lights: yellow key, blue fill, red rim "
                                  "(hollow: behind the subject)")
        self.box.add_events(Gdk.EventMask.BUTTON_PRESS_MASK |
                            Gdk.EventMask.BUTTON_RELEASE_MASK |
                            Gdk.EventMask.POINTER_MOTION_MASK)
        self.box.connect("button-press-event", self._press)
        self.box.connect("motion-notify-event", self._motion)
        self.box.connect("button-release-event", self._release)
        self.redraw()

    def markers(self):
        return light_markers(values(self.op, self.config), self.provenance.get("lights"),
                             self.op.lights())

    def placed(self, provenance):
        """A preview's provenance: the face's turn and where the lights went."""
        self.provenance = provenance or {}
        self.redraw()

    def redraw(self):
        data = sphere.render(self.SIZE, self.markers(), self.provenance.get("face_yaw"))
        self.image.set_from_pixbuf(GdkPixbuf.Pixbuf.new_from_bytes(
            GLib.Bytes.new(data), GdkPixbuf.Colorspace.RGB, True, 8, self.SIZE, self.SIZE,
            self.SIZE * 4))

    def _offset(self, event):
        """The event's position on the sphere's picture (the image is centred in its box)."""
        allocation = self.box.get_allocation()
        return (event.x - (allocation.width - self.SIZE) / 2,
                event.y - (allocation.height - self.SIZE) / 2)

    def _press(self, _box, event):
        self.dragging = sphere.grab(self.SIZE, self.markers(), *self._offset(event))
        if self.dragging is not None:
            self._drag(event)
        return True

    def _motion(self, _box, event):
        if self.dragging is not None:
            self._drag(event)
        return True

    def _release(self, _box, _event):
        self.dragging = None
        return True

    def _drag(self, event):
        markers = self.markers()
        where = markers.get(self.dragging) or (0.0, 0.0)
        azimuth, elevation = sphere.angles_at(self.SIZE, *self._offset(event),
                                              sphere_point(*where)[2])
        setup = self.op.param("setup")
        current = values(self.op, self.config)
        if setup is not None and current.get("setup") != "custom":
            set_value(self.config, setup, "custom")
            placed = self.provenance.get("lights")
            if placed:
                adopted = adopted_values(placed, self.provenance.get("ambient"),
                                         current.get("temperature"))
                for name, value in adopted.items():
                    if self.op.param(name) is not None:
                        set_value(self.config, self.op.param(name), value)
        handle = self.handles[self.dragging]
        set_value(self.config, self.op.param(handle.azimuth), azimuth)
        set_value(self.config, self.op.param(handle.elevation), elevation)
