"""What the Snakemake workflow asks of the package before, around and after its jobs:
the checked settings and the run plan, the run folder's lock, the shell prefix every
job runs under, and the end-of-run lines. The rules themselves stay lookups."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from xaiseg.config_check import checked_settings
from xaiseg.errors import XaisegError
from xaiseg.evaluate.headline import headline_lines
from xaiseg.integrity import repair_at_start
from xaiseg.io.sheet import run_input_problem
from xaiseg.run_plan import RunPlan, run_plan
from xaiseg.runlock import drop_run_lock, held_by_another, take_run_lock
from xaiseg.settings import ConfigError, WorkflowSettings

SCHEMA = "workflow/schemas/config.schema.yaml"
TORCHRUN = "python -m torch.distributed.run --standalone --nproc_per_node {gpus} -m xaiseg"


def stop(message: object) -> NoReturn:
    """End the run before any job with the message alone: no stack, no schema dump."""
    print(f"xaiseg: {message}", file=sys.stderr)
    sys.exit(1)


def start(
    config: Mapping[str, Any], project: Path, main_process: bool
) -> tuple[WorkflowSettings, RunPlan]:
    """The config and every file it names checked before the first job, and every job of
    the run planned. A corrupt artifact (cut short, changed since its stage wrote it) is
    set aside under corrupt/ so that this run makes it again; not while another run
    works in the folder, nor in a cluster job's own Snakemake."""
    try:
        settings = checked_settings(config, project / SCHEMA)
    except ConfigError as err:
        stop(err)
    if problem := run_input_problem(settings):
        stop(problem)
    plan = run_plan(settings)
    if main_process and not held_by_another(plan.run):
        for line in repair_at_start(plan.run):
            print(line, file=sys.stderr)
    return settings, plan


def hold(plan: RunPlan) -> None:
    """One run at a time in a run folder (xaiseg.runlock); the plan is recorded."""
    try:
        take_run_lock(plan.run)
    except XaisegError as err:
        stop(err)
    plan.write(f"{plan.run}/plan.json")


def finish(run: str, succeeded: bool) -> None:
    """The lock released; after a success, the headline and a line per stage."""
    drop_run_lock(run)
    if succeeded:
        print("\n".join(headline_lines(run)))


def command(src: Path) -> str:
    """Every job runs the package from this checkout, whatever environment runs the
    shell (the project's .venv, a --use-conda env, a cluster node): the code hashed
    into a rule's params is the code that runs. Braces doubled for Snakemake."""
    return f"PYTHONPATH={shlex.quote(str(src))}${{{{PYTHONPATH:+:$PYTHONPATH}}}} python -m xaiseg"


def launch(wildcards: Any, resources: Any) -> str:
    """A training job given several GPUs (resources gpu=N) trains data-parallel, one
    torchrun process per GPU."""
    gpus = int(getattr(resources, "gpu", 1) or 1)
    return TORCHRUN.format(gpus=gpus) if gpus > 1 else "python -m xaiseg"


def gpus_per_job(device: str, local: bool, dev: Path = Path("/dev")) -> int:
    """What a training or saliency job asks of the ``gpu`` resource: one where a GPU may
    run it (a cluster's node, or this machine when it has an NVIDIA device), none on a
    CPU-only machine or with ``run.device: cpu``, so that there jobs run side by side
    as the cores allow instead of one at a time under the profile's ``gpu=1``."""
    if device == "cpu":
        return 0
    if not local or device.startswith("cuda"):
        return 1
    return 1 if any(dev.glob("nvidia[0-9]*")) else 0


def one_of(names: Iterable[str]) -> str:
    """A wildcard that matches these names alone (a regular expression)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def reported(
    report: Callable[..., Any], outputs: Mapping[str, tuple[str, ...]], where: tuple = ()
) -> dict[str, Any]:
    """Report outputs: name -> (path, caption[, category]); ``where``: (category,
    subcategory). Captions are workflow/report/<caption>.rst."""
    return {
        key: report(
            path,
            caption=f"../report/{caption}.rst",
            **dict(zip(("category", "subcategory"), [*category, *where], strict=False)),
        )
        for key, (path, caption, *category) in outputs.items()
    }
