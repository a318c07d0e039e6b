import sys
from pathlib import Path

SRC = Path(workflow.basedir) / "src"
# The checkout's own package, first on the path: the Snakefile reads its settings and
# code hashes from the same files the jobs run.
sys.path.insert(0, str(SRC))

from xaiseg.codehash import stage_code_hash
from xaiseg.run_plan import model_files
from xaiseg.snakemake_support import command, finish, gpus_per_job, hold, launch
from xaiseg.snakemake_support import one_of, reported, start

# The config and every file it names checked, then every job of the run, its folder,
# inputs and settings (xaiseg.run_plan), before the first job.
SETTINGS, PLAN = start(config, SRC.parent, workflow.is_main_process)
RUN = PLAN.run
THREADS = SETTINGS.run.threads


def gpu_request(wildcards):
    """A training or saliency job's gpu resource: one where a GPU may run it (a cluster
    job, or this machine with an NVIDIA device; xaiseg.snakemake_support). Asked per
    job: Snakemake knows its executor only once the Snakefile is read."""
    local = workflow.local_exec and not workflow.remote_exec
    return gpus_per_job(SETTINGS.run.device, local)


GROUP_SHARDS = PLAN.shards_per_group
XAISEG = command(SRC)
# Training rules: several GPUs (resources gpu=N) train under torchrun (launch).
XAISEG_TRAIN = XAISEG.replace("python -m xaiseg", "{params.launch}")


def code(stage):
    """Hash of every source file the stage's command imports (xaiseg.codehash)."""
    return stage_code_hash(stage, SRC)


# Shard groups (run.group_size): per-sample stages as one job per group of whole
# shards, each stage's groups joined into its artifact (PLAN.job_folder).
GROUP_TAG = "_g{group}" if GROUP_SHARDS else ""
GROUP_ARG = f"--group {{wildcards.group}} {GROUP_SHARDS}" if GROUP_SHARDS else ""


def group_parts(stage, name):
    """Every group's folder of an artifact, counted once preprocessing has run."""
    return PLAN.artifact_groups(stage, name, checkpoints.preprocess.get().output.data)


def plan_parts():
    """Every preprocessing group's folder, counted once the sheet is split."""
    return PLAN.preprocess_groups(checkpoints.preprocess_plan.get().output[0])
