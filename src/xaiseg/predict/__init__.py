"""Inference: a trained run exported as a model package (``package``), applied to new
scans (``run``): inputs collected and decoded as training decoded them (``sources``),
masks and maps written back in each scan's own geometry and format (``write``)."""

from xaiseg.predict.package import export_model, read_package
from xaiseg.predict.run import predict

__all__ = ["export_model", "predict", "read_package"]
