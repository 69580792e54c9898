"""The preview on Krita's canvas: a transparent widget over the active view's canvas draws
the latest preview where its layer is, at the view's zoom, pan, rotation and mirror.

Not a Krita layer: adding and removing one puts "Add Layer" and "Remove Layer" in the
document's undo history (measured in the History docker, Krita 5.1 and 6.0), and filling a
4000x6000 layer takes ~0.9 s, so a layer could neither leave the document as it was on
Cancel nor follow a dragged light. This touches neither the document nor its history; the
preview it draws is screen-sized (the docker asks for one as large as the layer looks)."""

from __future__ import annotations

from .qt import QtCore, QtGui, QtWidgets

#: the canvas widgets of Krita's OpenGL and software canvases
CANVAS_CLASSES = ("KisOpenGLCanvas2", "KisQPainterCanvas")


def canvas_widget(window):
    """The canvas widget of the window's active view, or None."""
    if window is None or window.activeView() is None:
        return None
    area = window.qwindow().findChild(QtWidgets.QMdiArea)
    scope = area.activeSubWindow() if area is not None else None
    for widget in (scope or window.qwindow()).findChildren(QtWidgets.QWidget):
        if widget.metaObject().className() in CANVAS_CLASSES and widget.isVisible():
            return widget
    return None


def image_to_canvas(view, doc, widget):
    """The QTransform from the document's pixels to the canvas widget's, or None where
    this Krita cannot say. Krita 5.2 and later give the view's transforms; 5.1 only its
    zoom (in points: 72 per inch of the document's resolution) and the scroll bars, which
    say nothing of a rotated or mirrored canvas."""
    if hasattr(view, "flakeToCanvasTransform"):
        to_image, invertible = view.flakeToImageTransform().inverted()
        return to_image * view.flakeToCanvasTransform() if invertible else None
    canvas = view.canvas()
    if canvas.rotation() or canvas.mirror():
        return None
    scroller = widget.parent()
    while scroller is not None and not isinstance(scroller, QtWidgets.QAbstractScrollArea):
        scroller = scroller.parent()
    if scroller is None or not doc.resolution():
        return None
    scale = canvas.zoomLevel() * 72.0 / doc.resolution()
    return QtGui.QTransform(scale, 0, 0, scale, -scroller.horizontalScrollBar().value(),
                            -scroller.verticalScrollBar().value())


class CanvasOverlay(QtWidgets.QWidget):
    """Draws one picture over a rectangle of the image, following the view. `where()`
    gives the image-to-widget QTransform (None: draw nothing); `still()` says whether the
    preview still belongs on this canvas (the layer is still the active one), and `gone()`
    is called when it no longer does."""

    CHECKER = 8        # the transparency checkerboard's square, in screen pixels

    def __init__(self, canvas, where, still, gone):
        super().__init__(canvas)
        self.setObjectName("limner_canvas_preview")
        for attribute in ("WA_TransparentForMouseEvents", "WA_NoSystemBackground",
                          "WA_TranslucentBackground"):
            self.setAttribute(getattr(QtCore.Qt.WidgetAttribute, attribute))
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.where, self.still, self.gone = where, still, gone
        self.image: QtGui.QImage | None = None
        self.scaled: QtGui.QPixmap | None = None    # the image at its size on screen
        self.opaque = True
        self.rect_in_image = QtCore.QRectF()
        self.transform = None
        self.pictures = 0                       # how many were shown (tests, benchmark)
        self.follow = QtCore.QTimer(self)       # pan and zoom have no signal in 5.1
        self.follow.setInterval(100)
        self.follow.timeout.connect(self._follow)
        self.setGeometry(canvas.rect())

    def show_picture(self, image: QtGui.QImage, rect: tuple[int, int, int, int],
                     opaque: bool = True) -> None:
        """`image` over `rect` (x, y, w, h) of the document; not `opaque`: what turns
        transparent shows as Krita shows transparency."""
        self.image, self.rect_in_image, self.opaque = image, QtCore.QRectF(*rect), opaque
        self.scaled = None
        self.pictures += 1
        self.transform = self.where()
        self.setGeometry(self.parentWidget().rect())
        self.show()
        self.raise_()
        self.follow.start()
        self.update()

    def clear(self) -> None:
        self.follow.stop()
        self.image = None
        self.hide()

    def shown(self) -> bool:
        return self.image is not None and self.isVisible()

    def screen_rect(self) -> QtCore.QRect | None:
        """Where the picture is on the canvas widget (for the tests)."""
        if self.transform is None:
            return None
        return self.transform.mapRect(self.rect_in_image).toAlignedRect()

    def _follow(self) -> None:
        if not self.still():
            self.gone()
            return
        if self.geometry() != self.parentWidget().rect():
            self.setGeometry(self.parentWidget().rect())
        transform = self.where()
        if transform != self.transform:
            self.transform = transform
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.image is None or self.transform is None:
            return
        painter = QtGui.QPainter(self)
        target = self.transform.mapRect(self.rect_in_image)
        if not self.opaque:                   # what turns transparent shows as such
            painter.save()
            painter.setClipRegion(QtGui.QRegion(target.toAlignedRect()))
            painter.fillRect(self.rect(), QtGui.QBrush(_checker(self.CHECKER)))
            painter.restore()
        t = self.transform
        if t.m12() == 0 and t.m21() == 0 and t.m11() > 0 and t.m22() > 0:
            # neither rotated nor mirrored: scaled once by Qt's smooth (area) scaling and
            # put down as it is (drawn through a scaling transform, Qt's raster engine
            # striped it at 97 % in Krita 5.2)
            size = target.toAlignedRect().size()
            if self.scaled is None or self.scaled.size() != size:
                self.scaled = QtGui.QPixmap.fromImage(self.image.scaled(
                    size, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                    QtCore.Qt.TransformationMode.SmoothTransformation))
            painter.drawPixmap(target.toAlignedRect().topLeft(), self.scaled)
        else:
            painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform)
            painter.setTransform(t)
            painter.drawImage(self.rect_in_image, self.image)
        painter.end()


def _checker(size: int) -> QtGui.QPixmap:
    tile = QtGui.QPixmap(2 * size, 2 * size)
    tile.fill(QtGui.QColor(204, 204, 204))
    painter = QtGui.QPainter(tile)
    for x, y in ((0, 0), (size, size)):
        painter.fillRect(x, y, size, size, QtGui.QColor(153, 153, 153))
    painter.end()
    return tile


class CanvasPreview:
    """The docker's preview on the canvas: which canvas and layer it is over, made on
    first use and moved to whichever canvas is active. `changed(shown)` hears when it
    comes and goes (the docker offers Cancel while it is shown)."""

    #: the largest preview asked for, however large the layer looks
    MOST_SIDE = 1024
    #: while a light is dragged, previews at this part of that side (a quarter of the
    #: pixels), so that the picture keeps up with the hand (bench_editor --canvas: 16
    #: pictures a second against 8-9 at full size); the full one comes on release
    DRAG_SCALE = 0.5

    def __init__(self, krita, changed=lambda shown: None):
        self.krita, self.changed = krita, changed
        self.overlay: CanvasOverlay | None = None
        self.over: str | None = None                    # the layer's id

    def _view(self):
        window = self.krita.activeWindow()
        return window, (window.activeView() if window is not None else None)

    def side_for(self, doc, bounds: tuple[int, int, int, int]) -> int | None:
        """The long side, in pixels, that a layer with these bounds has on screen now
        (at most MOST_SIDE), or None where there is no canvas to preview on."""
        window, view = self._view()
        widget = canvas_widget(window)
        if widget is None or view.document() is None:
            return None
        transform = image_to_canvas(view, doc, widget)
        if transform is None:
            return None
        on_screen = transform.mapRect(QtCore.QRectF(*bounds))
        side = max(on_screen.width(), on_screen.height())
        return int(min(self.MOST_SIDE, max(bounds[2], bounds[3]), max(64.0, side)))

    def _overlay(self) -> CanvasOverlay | None:
        """The overlay, or None when there is none or Qt deleted it with its canvas (a
        document closed while its preview was shown)."""
        if self.overlay is not None:
            try:
                self.overlay.objectName()
            except RuntimeError:
                self.overlay = None
        return self.overlay

    def show(self, doc, node, bounds: tuple[int, int, int, int], image,
             opaque: bool = True) -> bool:
        """The preview over the layer's bounds; False where there is no canvas for it."""
        window, view = self._view()
        widget = canvas_widget(window)
        if widget is None:
            return False
        if self._overlay() is None or self.overlay.parentWidget() is not widget:
            self.clear()
            self.overlay = CanvasOverlay(
                widget, lambda: image_to_canvas(view, doc, widget), self._still, self.clear)
        self.over = node.uniqueId().toString()
        self.overlay.show_picture(image, bounds, opaque)
        self.changed(True)
        return self.overlay.transform is not None

    def _still(self) -> bool:
        """The previewed layer is still the active one (a node's id is unique across
        documents)."""
        doc = self.krita.activeDocument()
        if self.over is None or doc is None or doc.activeNode() is None:
            return False
        return doc.activeNode().uniqueId().toString() == self.over

    def clear(self) -> None:
        was = self.shown()
        if self._overlay() is not None:
            self.overlay.clear()
        self.over = None
        if was:
            self.changed(False)

    def shown(self) -> bool:
        return self._overlay() is not None and self.overlay.shown()
