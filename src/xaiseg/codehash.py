"""Which source files a stage runs, read from its real imports, and their hash.

One scheme serves two readers: the workflow's ``params.code`` (editing code a stage
runs reruns that stage) and the training-resume fingerprint (a checkpoint written by
other code is never resumed). Standard library only: the Snakefile imports it.

The walk follows every ``xaiseg`` import in a module's syntax tree, function-local
imports included, and the ``__init__`` of every package on the way, because Python
runs those too.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

from xaiseg.registry import modules

PACKAGE_ROOT = Path(__file__).resolve().parent
SRC = PACKAGE_ROOT.parent

# The module each stage's command runs; the CLI itself is parsing only.
STAGE_MODULES = {
    "demo": "xaiseg.demo",
    "layout": "xaiseg.io.layouts",
    "preprocess": "xaiseg.data.preprocess",
    "preprocess_plan": "xaiseg.data.plan",
    "preprocess_join": "xaiseg.data.preprocess_join",
    "classifier": "xaiseg.train.classifier",
    "pretrain": "xaiseg.train.pretrain",
    "counterfactual": "xaiseg.train.counterfactual",
    "saliency": "xaiseg.saliency.compute",
    "masks": "xaiseg.masks.build",
    "join": "xaiseg.data.join",
    "segmenter": "xaiseg.train.segmenter",
    "label_choice": "xaiseg.evaluate.label_choice",
    "evaluate": "xaiseg.evaluate.run",
    "evaluate_images": "xaiseg.evaluate.per_image",
    "explain": "xaiseg.evaluate.explain",
    "faithfulness": "xaiseg.evaluate.map_checks",
    "export": "xaiseg.predict.package",
    "predict": "xaiseg.predict.run",
    "predict_join": "xaiseg.predict.run",
}


def module_file(module: str, src: Path = SRC) -> Path | None:
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(path: Path, module: str) -> set[str]:
    """``xaiseg`` modules imported anywhere in one file (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "xaiseg"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "xaiseg":
                continue
            found.add(base)
            # ``from pkg import name`` may name a submodule.
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def import_closure(module: str, src: Path = SRC) -> dict[str, Path]:
    """Every ``xaiseg`` module that importing ``module`` runs, with its file."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, src)
        if path is None:  # a name imported from a module, not a module
            continue
        seen[name] = path
        todo += _package_inits(name)
        todo += sorted(imported_modules(path, name))
        # A registry's package runs every extension module found in its folder.
        todo += modules(name, src)
    return seen


@cache
def code_hash(module: str, src: Path = SRC) -> str:
    """SHA-256 over the closure's files (path and content), 16 hex digits."""
    digest = hashlib.sha256()
    for name, path in sorted(import_closure(module, src).items()):
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def stage_code_hash(stage: str, src: Path = SRC) -> str:
    return code_hash(STAGE_MODULES[stage], src)
