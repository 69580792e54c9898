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


class LimnerExtension(Extension if Krita else object):
    """The Run and Cancel actions (limner_krita.action), so they can get shortcuts."""

    def setup(self):
        pass

    def createActions(self, window):
        for name, method in (("limner_run", "run"), ("limner_cancel", "cancel")):
            action = window.createAction(name, f"Limner: {method.title()}", "tools/scripts")
            action.triggered.connect(lambda _=False, m=method: self._trigger(m))

    @staticmethod
    def _trigger(method):
        for docker in INSTANCES:
            if docker.isVisible():
                (docker.run if method == "run" else docker.backend.cancel)()
                return


if Krita is not None:
    Krita.instance().addDockWidgetFactory(
        DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, LimnerDocker))
    Krita.instance().addExtension(LimnerExtension(Krita.instance()))
