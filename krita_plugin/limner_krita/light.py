"""The light widget: a shaded sphere seen from the camera, on which the user drags the key
light (and the fill and rim, when the rig has them) to where it should come from. Plain
Qt, no Krita, so it is tested offscreen.

A light at azimuth a and elevation e (the backend's angles: 0 from the camera, -90 from
the image's left, elevation up) sits where its direction meets the sphere, seen head on:
x = cos e sin a, y = sin e. Lights behind the subject (|a| > 90) are drawn hollow and
stay behind while dragged; a double click moves a light to the other hemisphere. The
face's turn, as the backend found it, shows as a line from the centre towards where the
nose points (a named setup turns its lights with the face), and a rim with its mirror
shows both edge lights (the mirror follows the rim).
"""

from __future__ import annotations

import math

from limner.schema import sphere_angles as from_disc
from limner.schema import sphere_point as to_disc

from .qt import QT6, Qt, QtCore, QtGui, QtWidgets, Signal

#: (parameter prefix, label, colour): the key's parameters are `azimuth`, `elevation`
LIGHTS = (("", "Key", "#ffc83d"), ("fill_", "Fill", "#6fa8ff"), ("rim_", "Rim", "#ff6f6f"),
          ("rim_mirror", "Rim", "#ff6f6f"))
#: markers that follow another light instead of being dragged themselves
FOLLOWERS = {"rim_mirror"}
GRAB_PIXELS = 14


class LightSphere(QtWidgets.QWidget):
    """`moved(prefix, azimuth, elevation)` while a light is dragged; `released()` when the
    drag ends."""

    moved = Signal(str, float, float)
    released = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.lights = {prefix: [0.0, 0.0] for prefix, _, _ in LIGHTS}
        self.lights[""] = [-45.0, 30.0]
        self.shown = {"": True, "fill_": False, "rim_": False, "rim_mirror": False}
        self.face_yaw: float | None = None     # as the backend found it
        self.dragging: str | None = None
        self.setMinimumSize(150, 150)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding,
                           QtWidgets.QSizePolicy.Policy.Fixed)
        self.setToolTip("Drag the lights to place them: K key, F fill, R rim (hollow: behind "
                        "the subject; double-click to move a light behind or in front)")

    def sizeHint(self):
        return QtCore.QSize(220, 180)

    def set_light(self, prefix: str, azimuth: float, elevation: float) -> None:
        self.lights[prefix] = [azimuth, elevation]
        self.update()

    def set_shown(self, prefix: str, shown: bool) -> None:
        self.shown[prefix] = shown or prefix == ""
        self.update()

    def set_face(self, yaw: float | None) -> None:
        """The face's turn in degrees (+: the nose to the image's right), None: unknown."""
        self.face_yaw = yaw
        self.update()

    # geometry
    def _disc(self) -> tuple[float, float, float]:
        radius = min(self.width(), self.height()) / 2 - 10
        return self.width() / 2, self.height() / 2, max(radius, 10)

    def marker_position(self, prefix: str) -> QtCore.QPointF:
        cx, cy, r = self._disc()
        x, y, _ = to_disc(*self.lights[prefix])
        return QtCore.QPointF(cx + x * r, cy - y * r)

    def _angles_at(self, point, front: bool) -> tuple[float, float]:
        cx, cy, r = self._disc()
        return from_disc((point.x() - cx) / r, (cy - point.y()) / r, front)

    def _marker_at(self, point) -> str | None:
        near = [(math.hypot(point.x() - p.x(), point.y() - p.y()), prefix)
                for prefix, p in ((q, self.marker_position(q)) for q in self.lights)
                if self.shown[prefix] and prefix not in FOLLOWERS]
        distance, prefix = min(near)
        return prefix if distance <= GRAB_PIXELS else None

    # painting
    def paintEvent(self, event):
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        cx, cy, r = self._disc()
        key_x, key_y, key_front = to_disc(*self.lights[""])
        gradient = QtGui.QRadialGradient(QtCore.QPointF(cx, cy), r,
                                         QtCore.QPointF(cx + key_x * r * 0.8,
                                                        cy - key_y * r * 0.8))
        lit = QtGui.QColor("#f4e6d4") if key_front else QtGui.QColor("#8a7f74")
        gradient.setColorAt(0.0, lit)
        gradient.setColorAt(0.55, QtGui.QColor("#7a6a5c"))
        gradient.setColorAt(1.0, QtGui.QColor("#241d18"))
        painter.setPen(QtGui.QPen(QtGui.QColor("#555555"), 1))
        painter.setBrush(QtGui.QBrush(gradient))
        painter.drawEllipse(QtCore.QPointF(cx, cy), r, r)
        painter.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255, 50), 1,
                                  Qt.PenStyle.DashLine))
        painter.drawLine(QtCore.QPointF(cx - r, cy), QtCore.QPointF(cx + r, cy))
        painter.drawLine(QtCore.QPointF(cx, cy - r), QtCore.QPointF(cx, cy + r))
        if self.face_yaw is not None:              # where the face looks
            nose_x = math.sin(math.radians(self.face_yaw))
            painter.setPen(QtGui.QPen(QtGui.QColor("#e8e8e8"), 2))
            painter.drawLine(QtCore.QPointF(cx, cy), QtCore.QPointF(cx + nose_x * r * 0.6, cy))
            painter.drawEllipse(QtCore.QPointF(cx + nose_x * r * 0.6, cy), 3, 3)
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        for prefix, label, colour in reversed(LIGHTS):
            if not self.shown[prefix]:
                continue
            centre = self.marker_position(prefix)
            front = to_disc(*self.lights[prefix])[2]
            painter.setPen(QtGui.QPen(QtGui.QColor(colour), 3 if not front else 1))
            painter.setBrush(QtGui.QBrush(QtGui.QColor(colour)) if front
                             else QtGui.QBrush(Qt.BrushStyle.NoBrush))
            painter.drawEllipse(centre, 8, 8)
            painter.setPen(QtGui.QColor("#111111") if front else QtGui.QColor(colour))
            painter.drawText(QtCore.QRectF(centre.x() - 8, centre.y() - 8, 16, 16),
                             int(Qt.AlignmentFlag.AlignCenter), label[0])
        painter.end()

    # dragging
    @staticmethod
    def _point(event):
        return event.position() if QT6 else QtCore.QPointF(event.pos())

    def mousePressEvent(self, event):
        point = self._point(event)
        self.dragging = self._marker_at(point)
        cx, cy, r = self._disc()
        if self.dragging is None and math.hypot(point.x() - cx, point.y() - cy) <= r:
            self.dragging = ""                     # a click on the sphere moves the key
        if self.dragging is not None:
            self._drag_to(point)

    def mouseMoveEvent(self, event):
        if self.dragging is not None:
            self._drag_to(self._point(event))

    def mouseReleaseEvent(self, event):
        if self.dragging is not None:
            self.dragging = None
            self.released.emit()

    def mouseDoubleClickEvent(self, event):
        prefix = self._marker_at(self._point(event))
        if prefix is not None:
            azimuth, elevation = self.lights[prefix]
            flipped = math.copysign(180 - abs(azimuth), azimuth or 1.0)
            self.set_light(prefix, flipped, elevation)
            self.moved.emit(prefix, flipped, elevation)

    def _drag_to(self, point) -> None:
        prefix = self.dragging
        front = to_disc(*self.lights[prefix])[2]
        azimuth, elevation = (round(v, 1) for v in self._angles_at(point, front))
        self.set_light(prefix, azimuth, elevation)
        self.moved.emit(prefix, azimuth, elevation)
