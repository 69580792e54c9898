"""One place for Qt: Krita 5 runs PyQt5, Krita 6 runs PyQt6 and refuses PyQt5 imports.
Use whichever Krita already loaded; outside Krita (tests), whichever is installed."""

import sys

if "PyQt6" in sys.modules:
    from PyQt6 import QtCore, QtGui, QtWidgets
else:
    try:
        from PyQt5 import QtCore, QtGui, QtWidgets
    except ImportError:
        from PyQt6 import QtCore, QtGui, QtWidgets

QT6 = QtCore.PYQT_VERSION_STR.startswith("6")
Signal = QtCore.pyqtSignal
Qt = QtCore.Qt

__all__ = ["QT6", "Qt", "QtCore", "QtGui", "QtWidgets", "Signal"]
