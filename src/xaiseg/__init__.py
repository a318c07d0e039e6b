"""xaiseg: segmentation of medical images learned from image-level labels."""

__version__ = "0.1.0"
