"""Extensions found by their file, as nnU-Net finds trainer classes by name.

A saliency method, mask rule or refinement step is one module in its package's folder
that defines a subclass of the package's base class; a dataset layout is one module of
``io/layouts`` that defines ``<module>_layout``. Its name is the module's (a layout's
with "-" for "_": ``cbis_ddsm.py`` is ``cbis-ddsm``). Nothing else lists them: the
config check reads the folders' syntax trees (standard library only, nothing imported),
the stages import what is found, and the code hash of a stage counts every such file.
"""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent.parent

# Kind -> (package, the base class its extensions subclass, or a function name suffix).
EXTENSIONS = {
    "saliency method": ("xaiseg.saliency", "SaliencyMethod"),
    "mask rule": ("xaiseg.masks", "MaskRule"),
    "refinement step": ("xaiseg.masks.refine", "RefineStep"),
    "layout": ("xaiseg.io.layouts", "_layout"),
}


def _defined(path: Path, marker: str) -> ast.ClassDef | ast.FunctionDef | None:
    """The extension a module defines: its class deriving from ``marker``, or its
    function ``<module><marker>``; None for a module that is not an extension."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if marker.startswith("_") and isinstance(node, ast.FunctionDef):
            if node.name == path.stem + marker:
                return node
        elif isinstance(node, ast.ClassDef):
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            if marker in bases:
                return node
    return None


@cache
def _found(kind: str, src: Path = SRC) -> dict[str, tuple[str, str]]:
    """Name -> (module, attribute) of every extension of ``kind``."""
    return {name: found[:2] for name, found in _read(kind, src).items()}


@cache
def _read(kind: str, src: Path = SRC) -> dict[str, tuple[str, str, frozenset[str]]]:
    """Name -> (module, attribute, a function's parameter names) of each extension."""
    package, marker = EXTENSIONS[kind]
    found = {}
    for path in sorted(src.joinpath(*package.split(".")).glob("*.py")):
        node = _defined(path, marker)
        if node is None or path.stem.startswith("_"):
            continue
        name = path.stem.replace("_", "-") if kind == "layout" else path.stem
        params = frozenset()
        if isinstance(node, ast.FunctionDef):
            params = frozenset(a.arg for a in (*node.args.args, *node.args.kwonlyargs))
        found[name] = (f"{package}.{path.stem}", node.name, params)
    return found


def names(kind: str) -> list[str]:
    """The names a config may use for ``kind``, without importing anything."""
    return sorted(_found(kind))


def takes(kind: str, name: str, parameter: str) -> bool:
    """Whether extension ``name``'s function names ``parameter`` (a layout that takes
    ``axis`` reads volumes)."""
    return name in _read(kind) and parameter in _read(kind)[name][2]


def modules(package: str, src: Path = SRC) -> list[str]:
    """The extension modules of ``package`` (empty when it holds none): the files a
    stage that imports the package's registry runs."""
    kinds = [kind for kind, (owner, _) in EXTENSIONS.items() if owner == package]
    return sorted(module for kind in kinds for module, _ in _found(kind, src).values())


def load(kind: str) -> dict[str, Any]:
    """Name -> the extension's class (or layout function), each module imported."""
    return {
        name: getattr(importlib.import_module(module), attribute)
        for name, (module, attribute) in _found(kind).items()
    }
