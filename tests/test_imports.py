"""Data flows one way: no module imports a later stage than its own."""

from tests.conftest import ROOT
from xaiseg.codehash import imported_modules

# Stage packages in data-flow order; a module may import its own stage or earlier ones.
ORDER = ["io", "data", "models", "train", "saliency", "masks", "evaluate", "predict"]
# Shared modules below every stage; they import no stage themselves.
CORE = {"errors", "settings", "codehash", "provenance", "devices", "metrics", "runtimes"}
CORE |= {"integrity", "runlock", "config_check", "run_plan", "registry", "lean_imports"}
ENTRY = {"cli", "__main__", "demo", "snakemake_support"}  # commands and the workflow


def _module(path):
    rel = path.relative_to(ROOT / "src").with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _rank(module):
    parts = module.split(".")
    if len(parts) == 1:
        return -2
    head = parts[1]
    if head in CORE:
        return -1
    if head in ENTRY:
        return len(ORDER)
    return ORDER.index(head)


def test_every_package_is_ranked():
    for path in (ROOT / "src/xaiseg").iterdir():
        name = path.stem
        if (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py":
            assert name in ORDER or name in CORE or name in ENTRY or name == "__init__", name


def test_imports_point_one_way():
    wrong = []
    for path in sorted((ROOT / "src/xaiseg").rglob("*.py")):
        module = _module(path)
        for imported in imported_modules(path, module):
            if _rank(imported) > max(_rank(module), -1) and not (
                _rank(module) == -1 and _rank(imported) == -1
            ):
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)


def test_demo_imports_only_io_and_core():
    path = ROOT / "src/xaiseg/demo.py"
    ranks = {_rank(m) for m in imported_modules(path, "xaiseg.demo")}
    assert ranks <= {-2, -1, ORDER.index("io")}


def test_unused_optional_packages_are_absent_for_monai_unless_asked():
    """Marked absent before MONAI loads (its optional imports then skip them); the
    variable XAISEG_OPTIONAL_IMPORTS=1 leaves them be."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from xaiseg.lean_imports import skip_unused_optional_imports\n"
        "marked = skip_unused_optional_imports()\n"
        "import monai\n"
        "from monai.utils import optional_import\n"
        "print(len(marked), optional_import('torchvision')[1], sys.modules.get('cv2', 0))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    from xaiseg.lean_imports import UNUSED

    assert run.stdout.split() == [str(len(UNUSED)), "False", "None"], run.stderr
    env["XAISEG_OPTIONAL_IMPORTS"] = "1"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["0", "False", "0"], run.stderr  # torchvision: not installed
