"""A Krita plug-in the end-to-end tests install beside Limner's (never shipped): when
LIMNER_KRITA_SELFTEST names a spec, it drives the Limner docker (selftest.py)."""

import os

from krita import Extension, Krita


class SelfTest(Extension):
    def setup(self):
        if os.environ.get("LIMNER_KRITA_SELFTEST"):
            from . import selftest
            selftest.schedule()

    def createActions(self, window):
        pass


Krita.instance().addExtension(SelfTest(Krita.instance()))
