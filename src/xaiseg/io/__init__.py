"""Readers for every input format, one module each, behind one dispatcher."""

from xaiseg.io.readers import load_image, load_mask

__all__ = ["load_image", "load_mask"]
