"""Limner for Krita: a docker that sends the active layer and selection to the local
Limner backend and adds what comes back as new layers."""

import os
import sys

_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if _VENDOR not in sys.path:   # the client and websockets, placed here by the installer
    sys.path.insert(0, _VENDOR)

try:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Extension, Krita
except ImportError:   # imported outside Krita (the panel's tests): register nothing
    Krita = None
else:
    from .docker import DOCKER_ID, INSTANCES, LimnerDocker
    from .qt import QT6

    #: Krita 6's enums are scoped, like all of Qt 6's; Krita 5's are not
    DOCK_RIGHT = (DockWidgetFactoryBase.DockPosition.DockRight if QT6
                  else DockWidgetFactoryBase.DockRight)


#: action name -> (menu text, what it does to the visible docker)
ACTIONS = {
    "limner_run": ("Limner: Run", lambda d: d.run()),
    "limner_cancel": ("Limner: Cancel", lambda d: d.cancel()),
    "limner_repeat": ("Limner: Repeat Last Operation", lambda d: d.repeat_last()),
    "limner_remove_background": ("Limner: Remove Background",
                                 lambda d: d.run_operation("background.remove")),
    "limner_relight": ("Limner: Relight", lambda d: d.run_operation("relight")),
    "limner_stylize": ("Limner: Stylize", lambda d: d.run_operation("style")),
}


class LimnerExtension(Extension if Krita else object):
    """The docker's actions (limner_krita.action), so they can get shortcuts."""

    def setup(self):
        pass

    def createActions(self, window):
        for name, (text, act) in ACTIONS.items():
            action = window.createAction(name, text, "tools/scripts")
            action.triggered.connect(lambda _=False, a=act: self._trigger(a))

    @staticmethod
    def _trigger(act):
        for docker in INSTANCES:
            if docker.isVisible():
                act(docker)
                return


if Krita is not None:
    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DOCK_RIGHT, LimnerDocker))
    Krita.instance().addExtension(LimnerExtension(Krita.instance()))
