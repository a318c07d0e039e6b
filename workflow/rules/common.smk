import json
import re
import shlex
import sys
from pathlib import Path

SRC = Path(workflow.basedir) / "src"
# The checkout's own package, first on the path: the Snakefile reads its settings and
# code hashes from the same files the jobs run.
sys.path.insert(0, str(SRC))

from xaiseg.codehash import stage_code_hash
from xaiseg.config_check import checked_settings
from xaiseg.errors import XaisegError
from xaiseg.evaluate.headline import headline_lines
from xaiseg.integrity import repair_at_start
from xaiseg.io.sheet import run_input_problem
from xaiseg.run_plan import group_count, run_plan
from xaiseg.runlock import drop_run_lock, held_by_another, take_run_lock
from xaiseg.settings import ConfigError


def stop(message):
    """End the run before any job with the message alone: no stack, no schema dump."""
    print(f"xaiseg: {message}", file=sys.stderr)
    sys.exit(1)


# The config and every file it names, checked before the first job.
try:
    SETTINGS = checked_settings(
        config, SRC.parent / "workflow/schemas/config.schema.yaml"
    )
except ConfigError as err:
    stop(err)
if problem := run_input_problem(SETTINGS):
    stop(problem)

# Every job of the run, its folder, inputs and settings (xaiseg.run_plan).
PLAN = run_plan(SETTINGS)
RUN = PLAN.run
THREADS = SETTINGS.run.threads
GROUP_SHARDS = PLAN.shards_per_group

# A corrupt artifact (cut short, changed since its stage wrote it) is set aside under
# corrupt/ before the DAG is made, so this run makes it again. Not while another run
# works in the folder, nor in a cluster job's own Snakemake.
if workflow.is_main_process and not held_by_another(RUN):
    for line in repair_at_start(RUN):
        print(line, file=sys.stderr)


def hold_run_folder():
    """One run at a time in a run folder (xaiseg.runlock); the plan is recorded."""
    try:
        take_run_lock(RUN)
    except XaisegError as err:
        stop(err)
    PLAN.write(f"{RUN}/plan.json")


# Every job runs the package from this checkout, whatever environment runs the shell
# (the project's .venv, a --use-conda env, a cluster node): the code hashed into
# params.code is the code that runs. Doubled braces survive Snakemake's formatting.
XAISEG = f"PYTHONPATH={shlex.quote(str(SRC))}${{{{PYTHONPATH:+:$PYTHONPATH}}}} python -m xaiseg"
# Training rules: a job given several GPUs (resources gpu=N, as a profile's set-resources
# gives it) trains data-parallel, one torchrun process per GPU.
XAISEG_TRAIN = XAISEG.replace("python -m xaiseg", "{params.launch}")


def launch(wildcards, resources):
    gpus = int(getattr(resources, "gpu", 1) or 1)
    if gpus > 1:
        return f"python -m torch.distributed.run --standalone --nproc_per_node {gpus} -m xaiseg"
    return "python -m xaiseg"


def code(stage):
    """Hash of every source file the stage's command imports (xaiseg.codehash)."""
    return stage_code_hash(stage, SRC)


def one_of(names):
    """A wildcard that matches these names alone (a regular expression)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


# Shard groups (run.group_size): per-sample stages as one job per group of whole
# shards, each stage's groups joined into its artifact (PLAN.job_folder).
GROUP_TAG = "_g{group}" if GROUP_SHARDS else ""


def group_flag(wildcards):
    return f"--group {wildcards.group} {GROUP_SHARDS}" if GROUP_SHARDS else ""


def group_parts(stage, name):
    """Every group's folder of an artifact, counted once preprocessing has run."""
    index = Path(checkpoints.preprocess.get().output.data, "index.json")
    return PLAN.group_folders(stage, name, len(json.loads(index.read_text())["shards"]))


def plan_parts():
    """Every preprocessing group's folder, counted once the sheet is split."""
    plan = Path(checkpoints.preprocess_plan.get().output[0], "plan.json")
    shards = group_count(json.loads(plan.read_text())["rows"], PLAN.shard_size)
    return PLAN.group_folders("data", "shards", shards)


def reported(outputs, where=()):
    """Report outputs: name -> (path, caption[, category]); ``where``: (category,
    subcategory). Captions are workflow/report/<caption>.rst."""
    return {
        key: report(
            path,
            caption=f"../report/{caption}.rst",
            **dict(zip(("category", "subcategory"), [*category, *where])),
        )
        for key, (path, caption, *category) in outputs.items()
    }
