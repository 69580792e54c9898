"""Limner: AI portrait retouching for GIMP and Krita, served from one local backend."""

__version__ = "0.1.0"
