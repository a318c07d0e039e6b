"""End-to-end: the real Snakemake workflow on a tiny generated dataset.

The workflow runs once (module fixture) in a copy of the project, so tests can edit
the copy's code and config and ask Snakemake's dry-run what it would rerun.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors import safe_open

from tests.conftest import ROOT
from xaiseg.data.artifacts import IGNORE
from xaiseg.data.shards import ShardStore
from xaiseg.settings import EvaluateSettings

pytestmark = pytest.mark.slow
DEFAULT_TIE = EvaluateSettings.choice_tie  # the tiny config leaves it unset

TINY = {
    "run": "tiny",
    "threads": 1,
    "data": {
        "source": "demo",
        "classes": ["normal", "lesion"],
        "demo": {"n_images": 48, "size": 48},
    },
    "preprocess": {"image_size": 32, "val_fraction": 0.25, "test_fraction": 0.25, "shard_size": 20},
    "classifier": {"epochs": 2, "batch_size": 16},
    "counterfactual": {
        "epochs": 2,
        "batch_size": 8,
        "network_options": {"channels": [4, 8], "strides": [2, 2], "num_res_units": 0},
    },
    "saliency": {
        "maps": {
            "gradcam": {"target_layer": "layer2"},
            "integrated_gradients": {"options": {"n_steps": 4}},
            "counterfactual": {"model": "counterfactual"},
            "lrp": {"options": {"composite": "epsilon_plus_flat"}},
            # Merged with config.yaml's seg_gradcam: both explain the supervised U-Net.
            "seg_hirescam": {"method": "hirescam", "model": "segmenter/supervised"},
        }
    },
    "masks": {
        "recipes": [
            {"name": "gradcam-otsu", "maps": ["gradcam"], "rule": "otsu"},
            {
                "name": "fused",
                "maps": ["gradcam", "integrated_gradients"],
                "combine": "max",
                "rule": "otsu",
                "ignore": {"low": 0.3, "high": 0.5},
            },
            {"name": "lrp-otsu", "maps": ["lrp"], "rule": "otsu"},
            {
                "name": "cf-healthy",
                "maps": ["counterfactual"],
                "normalize": "none",
                "rule": "healthy_quantile",
            },
        ]
    },
    "segmenter": {
        "epochs": 2,
        "batch_size": 8,
        "network_options": {"channels": [8, 16, 32], "strides": [2, 2]},
    },
    "finetune": {
        "pretrained": "label_choice",
        "fractions": [0.25, 1.0],
        "seeds": [0, 1],
        "counts": [2],
        "count_seeds": [1, 2],  # draws of their own, not the shares' seeds
        "mixed_views": 4,  # each count run's 2 masks seen twice an epoch in its mixed U-Net
    },
    "evaluate": {"n_figure": 2},
}


def venv_env(base) -> dict[str, str]:
    """``base`` with this interpreter's folder first on PATH (snakemake, xaiseg)."""
    return {**base, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = venv_env(os.environ)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Rule -> job count from a dry-run's job-stats table."""
    out = snakemake(workdir, "--dry-run", *args).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].splitlines()[3:]
    jobs = {}
    for line in table:
        name, _, count = line.partition(" ")
        if name == "total" or not count.strip():
            break
        jobs[name] = int(count)
    return jobs


def write_config(workdir: Path, name: str, **changes) -> str:
    config = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        node[key] = value
    (workdir / name).write_text(yaml.safe_dump(config))
    return name


def copy_project(folder: Path) -> Path:
    """The workflow and the package into ``folder``, as a clone would hold them."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "config.yaml", "workflow", "src", "envs"):
        source = ROOT / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / item)
    (folder / "profiles").symlink_to("workflow/profiles")  # as in the checkout
    return folder


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = copy_project(tmp_path_factory.mktemp("project"))
    result = snakemake(work, "--configfile", write_config(work, "tiny.yaml"))
    (work / "first_run.log").write_text(result.stdout + result.stderr)
    return work


def test_every_artifact_written(workdir):
    run = workdir / "results" / "tiny"
    for path in [
        "sheet.tsv",
        "quarantine.tsv",
        "data/index.json",
        "data/shard-00000.safetensors",
        "classifier/model.safetensors",
        "classifier/metrics.json",
        "classifier/predictions.csv",
        "saliency/gradcam/index.json",
        "saliency/integrated_gradients/shard-00000.safetensors",
        "masks/gradcam-otsu/index.json",
        "masks/fused/index.json",
        "counterfactual/model.safetensors",
        "counterfactual/metrics.json",
        "saliency/counterfactual/index.json",
        "masks/cf-healthy/index.json",
        "segmenter/pseudo-gradcam-otsu/model.safetensors",
        "segmenter/supervised/predictions/index.json",
        "eval/per_image.csv",
        "eval/summary.md",
        "eval/report.md",
        "eval/figures/overlays.png",
        "saliency/lrp/index.json",
        "masks/lrp-otsu/index.json",
        "saliency/seg_hirescam/index.json",
        "eval/explain/supervised/figure.png",
        "segmenter/finetune-0.25-s1/init_weights.json",
        "segmenter/scratch-0.25-s1/predictions/index.json",  # scratch-1-s0: supervised/
        "eval/dice_vs_fraction.csv",
        "eval/dice_vs_count.csv",
        "eval/saliency_metrics.csv",
        "eval/comparisons.csv",
        "eval/faithfulness/gradcam/faithfulness.json",
        "eval/faithfulness/counterfactual/randomisation.csv",
        "eval/explain/supervised/saliency_metrics.csv",
        "eval/figures/dice_vs_fraction.png",
        "summary.csv",
    ]:
        assert (run / path).is_file(), path
    for folder in [
        "data",
        "classifier",
        "saliency/gradcam",
        "masks/gradcam-otsu",
        "segmenter/pseudo-fused",
        "segmenter/supervised",
        "eval",
    ]:
        record = json.loads((run / folder / "provenance.json").read_text())
        assert record["inputs"] and record["versions"]["torch"].startswith("2.13.0"), folder
    index = json.loads((run / "data" / "index.json").read_text())
    assert len(index["shards"]) == 3  # 48 samples, shards of 20
    assert (run / "eval" / "figures" / "overlays.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in run.rglob("*") if p.suffix in {".pt", ".pth", ".pkl", ".pickle"}]


def _xaiseg(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    return subprocess.run(
        [sys.executable, "-m", "xaiseg", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_every_artifact_matches_its_provenance(workdir):
    """No stage rewrites a file another stage recorded: a finished run verifies whole."""
    result = _xaiseg(workdir, "verify", "results/tiny")
    assert result.returncode == 0, result.stdout + result.stderr
    checked = int(re.search(r"verify: (\d+) artifacts, 0 corrupt", result.stdout).group(1))
    assert checked >= 20


def test_saliency_cached_as_float16(workdir):
    shard = workdir / "results/tiny/saliency/gradcam/shard-00000.safetensors"
    with safe_open(str(shard), "pt") as f:
        assert str(f.get_slice("map").get_dtype()) == "F16"


def test_summary_table(workdir):
    summary = pd.read_csv(workdir / "results/tiny/summary.csv")
    for column in ["recipe", "model", "split", "n", "dice", "iou", "hd95", "dice_volume"]:
        assert column in summary.columns
    test = summary[summary["split"] == "test"]
    assert test["dice_volume"].between(0, 1).all()  # every test patient group has a lesion
    assert set(test["model"]) == {"pseudo_mask", "segmenter", "supervised", "finetune", "scratch"}
    no_masks = test[test["setting"] == "no masks"]
    assert len(no_masks) == 8  # 4 pseudo-mask rows, 4 segmenters
    assert (test["setting"] == "all masks").sum() == 1  # supervised
    assert set(test["recipe"]) == {
        "gradcam-otsu",
        "fused",
        "lrp-otsu",
        "cf-healthy",
        "ground_truth",
    }
    few = test["setting"].str.startswith("few masks")
    assert few.sum() == 2  # pseudo-masks: the recipe 5 val masks choose; a U-Net reading
    assert test["model"].isin(["finetune", "scratch"]).sum() == 10  # DoLL: 3 + 2 runs per arm
    assert test["dice"].between(0, 1).all()
    # The label-only criterion: a value beside every weak row, one recipe chosen.
    weak = summary[summary["setting"] == "no masks"]
    assert weak["detection_margin"].notna().all()
    assert summary.loc[summary["setting"] != "no masks", "detection_margin"].isna().all()
    chosen = summary.loc[summary["label_choice"], "recipe"].unique()
    assert len(chosen) == 1
    # The largest margin, or among margins within the default width of it, most agreement.
    candidates = weak[(weak["model"] == "segmenter") & (weak["split"] == "test")]
    margins = candidates["detection_margin"]
    near = candidates[margins >= margins.max() - DEFAULT_TIE]
    best = near.loc[near["agreement"].idxmax() if len(near) > 1 else near.index[0], "recipe"]
    assert chosen[0] == best
    # The few-masks segmenter row reads the label-chosen recipe's U-Net.
    assert test.loc[few & (test["model"] == "segmenter"), "recipe"].tolist() == [best]
    metrics = json.loads((workdir / "results/tiny/classifier/metrics.json").read_text())
    assert {"auc", "accuracy", "sensitivity", "specificity"} <= set(metrics["test"])


def test_the_run_ends_with_the_headline_and_a_line_per_stage(workdir):
    printed = (workdir / "first_run.log").read_text()
    assert "headline (no masks, chosen from labels):" in printed and "(95% CI " in printed
    assert "report: snakemake --report results/tiny/report.html" in printed
    stages = printed.split("stages (jobs, wall time; results/tiny/benchmarks/):")[1]
    for stage in ("train_classifier", "saliency", "masks", "segmenter", "evaluate", "all"):
        assert f"  {stage} " in stages


def test_predict_gives_the_runs_own_masks_in_each_files_format(workdir):
    """The exported headline, applied to the run's first test images by the workflow's
    predict rule: each mask in its file's format and size, and on the network's grid
    the very masks the run's segmenter wrote (nothing drifted between training and use)."""
    import numpy as np
    from PIL import Image

    from xaiseg.data.shards import ShardStore
    from xaiseg.predict import read_package
    from xaiseg.predict.run import Predictor, predict_sources
    from xaiseg.predict.sources import SheetRows, collect_sources

    run = workdir / "results" / "tiny"
    table = pd.read_csv(run / "predict/predictions.tsv", sep="\t", keep_default_na=False)
    assert len(table) == 8 and not table["problem"].astype(bool).any()
    suffixes = {name.split("_mask")[1] for name in table["mask"]}
    assert suffixes == {".png", ".nii.gz"}  # DICOM: a NIfTI copy beside the SEG
    seg = table[table["kind"] == "series"]
    assert len(seg) and all(name.endswith("_seg.dcm") for name in seg["seg"])
    for name in table[table["mask"].str.endswith(".png")]["mask"]:
        source = run / "demo_data/images" / name.split("/", 1)[1].replace("_mask", "")
        assert Image.open(run / "predict" / name).size == Image.open(source).size

    package = read_package(run / "model")
    rows = SheetRows(root=run / "demo_data", split="test", limit=8)
    sources = collect_sources([run / "sheet.tsv"], rows=rows)
    store = ShardStore(run / "segmenter" / package.inference.segmenter / "predictions")
    written = dict(zip(store.sample_ids, store.load(["mask"])["mask"].numpy(), strict=True))
    for prediction in predict_sources(Predictor(package, "cpu"), sources):
        expected = written[prediction.decoded.source.name][0]
        assert np.array_equal(prediction.grid_mask[0], expected)


def test_logs_and_benchmarks_for_every_rule(workdir):
    run = workdir / "results" / "tiny"
    assert (
        len(list((run / "logs").glob("*.log")))
        == len(list((run / "benchmarks").glob("*.tsv")))
        == 41
    )


def test_second_run_does_nothing(workdir):
    assert planned_jobs(workdir, "--configfile", "tiny.yaml") == {}


def test_mask_parameter_reruns_masks_and_downstream_only(workdir):
    name = write_config(workdir, "gate.yaml", masks__gate_threshold=0.7)
    assert planned_jobs(workdir, "--configfile", name) == {
        "masks": 4,
        # 4 on pseudo-masks, 5 fine-tuned from the labels' choice, 2 mixed count starts
        "train_segmenter": 11,
        "choose_segmenter": 1,
        "choose_masks": 1,
        "evaluate": 1,
        "export_model": 1,
        "predict": 1,
        "predict_join": 1,
        "all": 1,
    }


def test_the_tie_width_reruns_the_label_choice_not_the_recipes(workdir):
    """evaluate.choice_tie reaches the label choice's rule and the evaluation; the
    recipes' U-Nets stay, and a setting the label choice does not read leaves it alone.
    A width over every margin leaves the choice to agreement alone."""
    name = write_config(workdir, "tie.yaml", evaluate__choice_tie=2.0)
    jobs = planned_jobs(workdir, "--configfile", name)
    assert jobs["choose_segmenter"] == 1 and jobs["evaluate"] == 1
    assert "masks" not in jobs and "train_classifier" not in jobs
    trained = shell_commands(workdir, "--configfile", name, force=False)["train_segmenter"]
    assert trained and not [c for c in trained if "/pseudo-" in c or "/supervised " in c]
    other = write_config(workdir, "few.yaml", evaluate__few_masks=3)
    assert "choose_segmenter" not in planned_jobs(workdir, "--configfile", other)

    commands = shell_commands(workdir, "--configfile", name)
    assert '"choice_tie": 2.0' in commands["evaluate"][0]
    command = commands["choose_segmenter"][0]
    assert " --tie 2.0 " in command
    command = command.split(" > ")[0].replace("/label_choice", "/label_choice_tie")
    env = venv_env(os.environ)
    subprocess.run(command, shell=True, cwd=workdir, env=env, check=True, timeout=600)
    out = workdir / "results/tiny/label_choice_tie"
    table = pd.read_csv(out / "criterion.csv")
    assert table["agreement"].notna().sum() >= 2
    chosen = table.loc[table["label_choice"], "recipe"].tolist()
    assert chosen == [table.loc[table["agreement"].idxmax(), "recipe"]]
    assert json.loads((out / "provenance.json").read_text())["params"]["choice_tie"] == 2.0
    shutil.rmtree(out)


def test_classifier_parameter_keeps_preprocessing(workdir):
    name = write_config(workdir, "lr.yaml", classifier__learning_rate=0.01)
    jobs = planned_jobs(workdir, "--configfile", name)
    assert "preprocess" not in jobs and "demo_data" not in jobs
    # The segmenters on pseudo-masks and those fine-tuned from one; not the supervised
    # nor the scratch ones, which learn from ground truth alone.
    trained = shell_commands(workdir, "--configfile", name, force=False)["train_segmenter"]
    assert len(trained) == jobs["train_segmenter"] == 11
    assert not [c for c in trained if "/segmenter/supervised " in c or "/scratch-" in c]
    # The counterfactual map and the supervised segmenter's maps do not depend on the
    # classifier: only its three maps rerun.
    assert jobs["train_classifier"] == 1 and jobs["saliency"] == 3
    assert "explain" not in jobs
    assert "train_counterfactual" not in jobs


def test_stage_code_change_reruns_that_stage(workdir):
    rule_file = workdir / "src" / "xaiseg" / "masks" / "otsu.py"
    original = rule_file.read_text()
    try:
        rule_file.write_text(original + "\n# changed\n")
        jobs = planned_jobs(workdir, "--configfile", "tiny.yaml")
        assert jobs == {
            "masks": 4,
            "train_segmenter": 11,
            "choose_segmenter": 1,
            "choose_masks": 1,
            "evaluate": 1,
            # The explain figure normalises maps as recipes do (masks.normalize), and
            # the masks package's __init__ imports every rule.
            "explain": 1,
            "export_model": 1,
            "predict": 1,
            "predict_join": 1,
            "all": 1,
        }
    finally:
        rule_file.write_text(original)


def test_wrong_config_type_named(workdir):
    name = write_config(workdir, "bad.yaml", classifier__epochs="ten")
    result = snakemake(workdir, "--dry-run", "--configfile", name, check=False)
    assert result.returncode != 0
    assert "'ten' is not of type 'integer'" in result.stdout + result.stderr


def test_no_patient_identifiers_in_any_output(workdir):
    from xaiseg.demo import read_fake_identities

    run = workdir / "results" / "tiny"
    dicoms = sorted((run / "demo_data" / "images").glob("*.dcm"))
    identities = read_fake_identities(dicoms)
    assert len(dicoms) >= 10 and any("DEMO^" in v for v in identities)
    assert "Nowhere Fake General Hospital" in identities
    outputs = [p for p in workdir.rglob("*") if p.is_file() and p.suffix != ".dcm"]
    outputs = [p for p in outputs if "src" not in p.relative_to(workdir).parts[:1]]
    assert len(outputs) > 50
    for path in outputs:
        data = path.read_bytes()
        for value in identities:
            assert value.encode() not in data, f"{value!r} leaked into {path}"


def test_report_carries_counts_and_classifier(workdir):
    report = (workdir / "results/tiny/eval/report.md").read_text()
    assert "images in the sheet: 48, kept: 48, quarantined: 0" in report
    assert "## Classifier (test split)" in report and "(val)" in report
    summary = pd.read_csv(workdir / "results/tiny/summary.csv")
    chosen = summary.loc[summary["label_choice"], "recipe"].iloc[0]
    assert "## Choosing without masks (val split)" in report
    assert f"Chosen, and the headline: **{chosen}**" in report
    assert "![overlays](figures/overlays.png)" in report


def shell_commands(workdir: Path, *args: str, force: bool = True) -> dict[str, list[str]]:
    """Rule -> the shell commands a (forced) dry run would execute."""
    forced = ["--forceall"] if force else []
    out = snakemake(workdir, "--dry-run", *forced, "--printshellcmds", *args).stdout
    commands: dict[str, list[str]] = {}
    rule = None
    for line in out.splitlines():
        if line.startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint ")):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("Shell command: ") and rule:
            commands.setdefault(rule, []).append(line[len("Shell command: ") :])
    return commands


def test_a_training_job_given_several_gpus_runs_under_torchrun(workdir):
    """A profile's set-resources gpu=2 turns that rule's command into a two-process
    torchrun (tests/test_distributed.py trains that way); one GPU stays plain python."""
    args = ["--configfile", "tiny.yaml", "--resources", "gpu=2"]
    commands = shell_commands(workdir, *args, "--set-resources", "train_segmenter:gpu=2")
    torchrun = "python -m torch.distributed.run --standalone --nproc_per_node 2 -m xaiseg"
    assert all(f"{torchrun} train-segmenter" in c for c in commands["train_segmenter"])
    assert "python -m xaiseg train-classifier" in commands["train_classifier"][0]


def test_stages_in_shard_groups_equal_one_job(workdir):
    """group_size 20 (one of the tiny data's three shards): preprocessing, saliency and
    pseudo-masks as a job per shard group (and map or recipe), the groups joined into
    what one job writes, byte for byte."""
    name = write_config(workdir, "groups.yaml", run="tiny_groups", group_size=20)
    folders = ["saliency/gradcam", "masks/gradcam-otsu"]
    targets = [f"results/tiny_groups/{f}" for f in folders]
    result = snakemake(workdir, *targets, "--configfile", name)
    for rule in ("preprocess_group", "saliency", "masks"):  # the joins apart
        assert len(re.findall(rf"^(local)?rule {rule}:", result.stderr, re.M)) == 3, rule
    for folder in ["data", *folders]:
        grouped, single = (workdir / "results" / run / folder for run in ("tiny_groups", "tiny"))
        index = json.loads((single / "index.json").read_text())
        assert json.loads((grouped / "index.json").read_text()) == index
        assert len(index["shards"]) == 3
        for shard in index["shards"]:
            assert (grouped / shard).read_bytes() == (single / shard).read_bytes(), shard
    for table in ("sheet.tsv", "quarantine.tsv"):
        grouped, single = (workdir / "results" / run / table for run in ("tiny_groups", "tiny"))
        assert grouped.read_text() == single.read_text(), table
    provenance = workdir / "results/tiny_groups/saliency/gradcam/provenance.json"
    record = json.loads(provenance.read_text())
    assert record["throughput"]["images"] == 48 and len(record["groups"]) == 3
    # Evaluation too: a job per group scores its images, one evaluate job gathers them
    # (tests/test_shard_groups.py: byte-equal to one job's tables).
    commands = shell_commands(workdir, "--configfile", name, force=False)
    assert len(commands["evaluate_images"]) == 3
    assert commands["evaluate"][0].count("results/tiny_groups/groups/eval/images/") == 3


def test_every_rule_runs_this_checkouts_code(workdir):
    """Under the .venv, --use-conda or a cluster node alike, the command itself puts the
    checkout's src/ first on PYTHONPATH, so the hashed code is the code that runs."""
    commands = shell_commands(workdir, "--configfile", "tiny.yaml")
    assert {"demo_data", "preprocess", "train_classifier", "saliency", "masks"} <= set(commands)
    src = str(workdir / "src")
    for rule, lines in commands.items():
        if rule == "all":
            continue
        for line in lines:
            assert line.lstrip("(").startswith(
                f"PYTHONPATH={src}${{PYTHONPATH:+:$PYTHONPATH}} python -m xaiseg "
            ), (rule, line)


def test_a_job_runs_outside_the_projects_environment(workdir, tmp_path):
    """The preprocess command, run with PYTHONPATH pointing elsewhere and from another
    folder, still imports xaiseg from the checkout (what a conda env or a node sees)."""
    line = shell_commands(workdir, "--configfile", "tiny.yaml")["evaluate"][0]
    probe = (
        line.lstrip("(").split(" python -m xaiseg", 1)[0]
        + " python -c 'import xaiseg; print(xaiseg.__file__)'"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        ["bash", "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.stdout.strip() == str(workdir / "src" / "xaiseg" / "__init__.py")


def test_bad_recipe_fails_before_any_job(workdir):
    name = write_config(
        workdir,
        "badrecipe.yaml",
        masks__recipes=[{"name": "x", "maps": ["gradcam", "nope"], "rule": "otsu"}],
        preprocess__test_fraction=0.8,
    )
    result = snakemake(workdir, "--dry-run", "--configfile", name, check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "map 'nope' is not in saliency.maps" in text
    assert "val_fraction + test_fraction" in text


def test_explain_the_segmenter_with_seg_gradcam(workdir):
    """Any model, any target: Seg-Grad-CAM of the supervised U-Net, through the CLI."""
    run = workdir / "results" / "tiny"
    out = run / "explain" / "seg_gradcam"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xaiseg",
            "saliency",
            "--data",
            str(run / "data"),
            "--model",
            str(run / "segmenter" / "supervised"),
            "--out",
            str(out),
            "--map",
            "seg_gradcam",
            "--method",
            "gradcam",
            "--target-layer",
            "model.1.submodule.1.submodule",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(workdir / "src")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    index = json.loads((out / "index.json").read_text())
    data = json.loads((run / "data" / "index.json").read_text())
    assert [s["sample_id"] for s in index["samples"]] == [s["sample_id"] for s in data["samples"]]
    assert index["method"] == "gradcam" and index["target"] == "finding"


def test_plain_rerun_after_kill_completes(workdir):
    """kill -9 of Snakemake in the middle of a job leaves a lock and an incomplete
    output; the default profile (loaded by itself) makes a plain rerun finish."""
    import signal

    env = venv_env(os.environ)
    log = workdir / "results" / "tiny" / "logs" / "segmenter_supervised.log"
    log.unlink()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "2",
            "--configfile",
            "tiny.yaml",
            "--forcerun",
            "results/tiny/segmenter/supervised/model.safetensors",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    # The job's log appears once Snakemake has removed the old outputs and started the
    # job; the job itself needs seconds more (imports, training), so this is mid-job.
    while time.time() < deadline and not log.exists():
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # Snakemake and its job, as a power cut would
    process.wait()
    assert not (workdir / "results/tiny/segmenter/supervised/model.safetensors").exists()
    result = snakemake(workdir, "--configfile", "tiny.yaml")
    assert (
        "output: results/tiny/segmenter/supervised/model.safetensors"
        in result.stdout + result.stderr
    )
    assert planned_jobs(workdir, "--configfile", "tiny.yaml") == {}


def test_a_second_run_in_the_same_folder_stops_before_any_job(workdir):
    """Run A trains a segmenter; run B, started in the same folder with the same config
    while A works, stops before its first job with the lock's holder named, and A ends
    with every output in place (before the run lock, B failed on A's training claim and
    Snakemake deleted A's finished outputs)."""
    env = venv_env(os.environ)
    log = workdir / "results" / "tiny" / "logs" / "segmenter_supervised.log"
    log.unlink()
    args = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml"]
    run_a = subprocess.Popen(
        [*args, "--forcerun", "results/tiny/segmenter/supervised/model.safetensors"],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.time() + 600
    while time.time() < deadline and not log.exists():
        time.sleep(0.05)
    run_b = snakemake(workdir, "--configfile", "tiny.yaml", check=False)
    output_a = run_a.communicate(timeout=900)[0]
    assert run_b.returncode == 1, run_b.stdout + run_b.stderr
    printed = run_b.stdout + run_b.stderr
    assert f"another run (process {run_a.pid} on " in printed
    assert "nothing was started" in printed and "rm results/tiny/.xaiseg-run.lock" in printed
    assert "Traceback" not in printed
    assert run_a.returncode == 0, output_a[-3000:]
    assert not (workdir / "results/tiny/.xaiseg-run.lock").exists()
    assert planned_jobs(workdir, "--configfile", "tiny.yaml") == {}


def test_a_truncated_model_is_remade_by_a_plain_rerun(workdir):
    """A final segmenter's model cut short: the plain rerun names it, sets its artifact
    aside and trains it again, to the same bytes."""
    model = workdir / "results/tiny/segmenter/supervised/model.safetensors"
    original = model.read_bytes()
    os.truncate(model, 1000)
    result = snakemake(workdir, "--configfile", "tiny.yaml")
    printed = result.stdout + result.stderr
    assert f"{model.relative_to(workdir)}: 1,000 bytes where its stage wrote" in printed
    assert "set results/tiny/segmenter/supervised aside to results/tiny/corrupt/" in printed
    assert "output: results/tiny/segmenter/supervised/model.safetensors" in printed
    assert model.read_bytes() == original
    assert planned_jobs(workdir, "--configfile", "tiny.yaml") == {}


def test_failing_stage_prints_its_error(workdir, tmp_path):
    """A stage that fails shows the error itself (show-failed-logs), not only a path."""
    from PIL import Image

    folder = workdir / "badsheet"
    folder.mkdir(exist_ok=True)
    rows = ["sample_id\timage\tlabel\tgroup"]
    for i in range(6):
        Image.new("L", (16, 16), 40 * i).save(folder / f"i{i}.png")
        rows.append(f"s{i}\ti{i}.png\t{'lesion' if i % 2 else 'normal'}\tg{i // 2}")
    (folder / "i3.png").write_bytes(b"not a png")
    (folder / "sheet.tsv").write_text("\n".join(rows) + "\n")
    name = write_config(
        workdir, "badrun.yaml", run="badrun", data__source="sheet", data__sheet="badsheet/sheet.tsv"
    )
    result = snakemake(workdir, "--configfile", name, "--until", "preprocess", check=False)
    assert result.returncode != 0
    assert "row 5 (s3): i3.png: image cannot be decoded" in result.stdout + result.stderr


def test_sheet_problems_fail_before_any_job(workdir):
    folder = workdir / "badlabels"
    folder.mkdir(exist_ok=True)
    (folder / "sheet.tsv").write_text(
        "sample_id\timage\tlabel\n"
        "a\tnope.png\tnormal\nb\t../../../etc/passwd\tlesion\nc\tx.png\ttumour\n"
    )
    name = write_config(
        workdir,
        "badlabels.yaml",
        run="badlabels",
        data__source="sheet",
        data__sheet="badlabels/sheet.tsv",
    )
    result = snakemake(workdir, "--dry-run", "--configfile", name, check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "row 2 (a): nope.png: image file not found" in text
    assert "row 3 (b): ../../../etc/passwd: image path leaves the sheet's folder" in text
    assert "row 4 (c): label 'tumour' is not one of the classes" in text


def test_the_workflow_explains_its_segmenter(workdir):
    """Seg-Grad-CAM and Seg-HiRes-Grad-CAM of the supervised U-Net at its bottleneck,
    over its predicted mask, beside its predictions."""
    run = workdir / "results" / "tiny"
    for name in ("seg_gradcam", "seg_hirescam"):
        index = json.loads((run / "saliency" / name / "index.json").read_text())
        assert index["target_layer"] == "model.1.submodule.1.submodule", name
    record = json.loads((run / "eval/explain/supervised/provenance.json").read_text())
    assert record["params"]["maps"] == ["seg_gradcam", "seg_hirescam"]
    assert (run / "eval/explain/supervised/figure.png").read_bytes()[:4] == b"\x89PNG"


def test_the_classifier_can_start_from_self_supervised_weights(workdir):
    name = write_config(workdir, "pretrained.yaml", classifier__init_weights="pretrain")
    jobs = planned_jobs(workdir, "--configfile", name)
    assert jobs["train_pretrain"] == 1 and jobs["train_classifier"] == 1
    commands = shell_commands(workdir, "--configfile", name)
    assert (
        '"init_weights": "results/tiny/pretrain/model.safetensors"'
        in commands["train_classifier"][0]
    )
    assert '"network": "resnet18"' in commands["train_pretrain"][0]  # the classifier's


def test_classifier_candidates_train_side_by_side_and_the_classifier_chooses(workdir):
    name = write_config(workdir, "candidates.yaml", classifier__candidates=[{"seed": 3}])
    jobs = planned_jobs(workdir, "--configfile", name)
    assert jobs["train_classifier_candidate"] == 2 and jobs["train_classifier"] == 1
    commands = shell_commands(workdir, "--configfile", name)
    assert "--candidates-trained" in commands["train_classifier"][0]
    trained = {c.split("--out ")[1].split()[0]: c for c in commands["train_classifier_candidate"]}
    assert sorted(trained) == [f"results/tiny/classifier/candidates/{k}" for k in (0, 1)]
    assert '"seed": 3' in trained["results/tiny/classifier/candidates/1"]
    assert '"seed": 3' not in trained["results/tiny/classifier/candidates/0"]
    assert "--candidates-trained" not in " ".join(trained.values())


def test_few_masks_rows_fine_tuned_and_from_scratch(workdir):
    """DoLL: each (fraction, seed) trains a fine-tuned and a scratch U-Net on the same
    drawn masks; a share below 1 repeats over the seeds, and so does a count of masks.
    Fine-tuning starts from the U-Net of the recipe the label-only criterion chose,
    under whose name its rows are."""
    run = workdir / "results" / "tiny"
    summary = pd.read_csv(run / "summary.csv")
    few = summary[summary["model"].isin(["finetune", "scratch"]) & (summary["split"] == "test")]
    settings = {"25% of train masks", "100% of train masks", "2 train masks"}
    assert len(few) == 10 and set(few["setting"]) == settings
    counted = few[few["setting"] == "2 train masks"]
    assert sorted(counted["seed"]) == [1, 1, 2, 2] and (counted["masks"] == 2).all()
    assert counted["fraction"].isna().all()
    metrics = json.loads((run / "segmenter/finetune-k2-s1/metrics.json").read_text())
    assert metrics["mask_count"] == 2 and metrics["best_epoch"] == len(metrics["history"])
    trained = json.loads((run / "segmenter/scratch-k2-s2/metrics.json").read_text())["n_train"]
    assert trained < json.loads((run / "segmenter/supervised/metrics.json").read_text())["n_train"]
    chosen = pd.read_csv(run / "label_choice/criterion.csv")
    chosen = chosen.loc[chosen["label_choice"], "recipe"].tolist()
    assert set(few.loc[few["model"] == "finetune", "recipe"]) == set(chosen)
    labelled = summary.loc[summary["label_choice"], "recipe"]
    assert set(labelled) == set(chosen)  # the evaluation's choice is the same
    start = (run / "label_choice/model.safetensors").read_bytes()
    assert start == (run / f"segmenter/pseudo-{chosen[0]}/model.safetensors").read_bytes()
    table = pd.read_csv(run / "eval" / "dice_vs_fraction.csv")
    assert sorted(table.loc[table["split"] == "test", "runs"]) == [1, 1, 2, 2]
    # The count runs over their two draws, in a table and in the report.
    table = pd.read_csv(run / "eval" / "dice_vs_count.csv").query("split == 'test'")
    assert sorted(table["model"]) == ["finetune", "scratch"] and (table["runs"] == 2).all()
    mean = counted.loc[counted["model"] == "finetune", "dice"].mean()
    assert table.loc[table["model"] == "finetune", "dice_mean"].item() == pytest.approx(mean)
    assert "## Few masks of your own (test split)" in (run / "eval/report.md").read_text()
    # Scratch on every mask with the supervised seed is the supervised U-Net: its row,
    # not a second training of it.
    folders = {"finetune": "finetune-1-s0", "scratch": "supervised"}
    assert not (run / "segmenter/scratch-1-s0").exists()
    for arm, full_folder in folders.items():
        metrics = json.loads((run / f"segmenter/{arm}-0.25-s1/metrics.json").read_text())
        full = json.loads((run / f"segmenter/{full_folder}/metrics.json").read_text())
        assert metrics["mask_fraction"] == 0.25 and metrics["n_train"] < full["n_train"]
    report = json.loads((run / "segmenter/finetune-0.25-s1/init_weights.json").read_text())
    assert report["loaded"] and not report["new"] and not report["skipped"]
    assert report["file"].endswith("label_choice/model.safetensors")
    # mixed_views: a count run fine-tunes the U-Net of the chosen recipe's pseudo-masks
    # with the run's own draw of masks mixed in (the same images both stages train on).
    mixed = json.loads((run / "segmenter/mixed-k2-s1/metrics.json").read_text())
    counted = json.loads((run / "segmenter/finetune-k2-s1/metrics.json").read_text())
    weak = json.loads((run / f"segmenter/pseudo-{chosen[0]}/metrics.json").read_text())
    assert mixed["n_ground_truth"] == counted["n_train"] >= 3  # 2 lesions, 1+ without
    assert mixed["n_train"] == weak["n_train"] and mixed["trained_on"] == "masks"
    report = json.loads((run / "segmenter/finetune-k2-s1/init_weights.json").read_text())
    assert report["file"].endswith("segmenter/mixed-k2-s1/model.safetensors")
    shards = list((run / f"masks/{chosen[0]}").glob("*.safetensors"))
    assert shards
    for shard in shards:
        assert (run / "label_choice/masks" / shard.name).read_bytes() == shard.read_bytes()
    assert not summary["model"].astype(str).str.contains("mixed").any()


def test_a_self_training_round_learns_from_the_last_segmenters_masks(workdir):
    """masks.rounds 1: the round's masks are the pseudo-mask U-Net's predictions on the
    images that hold the lesion (labels on train and val) and empty elsewhere; the
    round's own U-Net trains on them; the summary gains the round's rows."""
    name = write_config(workdir, "rounds.yaml", masks__rounds=1)
    run = workdir / "results" / "tiny"
    target = "results/tiny/segmenter/pseudo-gradcam-otsu-r1/model.safetensors"
    snakemake(workdir, target, "--configfile", name)
    data = ShardStore(run / "data")
    labels = [s["label_index"] for s in data.samples]
    splits = [s["split"] for s in data.samples]
    previous = ShardStore(run / "segmenter/pseudo-gradcam-otsu/predictions").load(["mask"])
    masks = ShardStore(run / "masks/gradcam-otsu-r1").load(["mask"])["mask"]
    for i, (label, split) in enumerate(zip(labels, splits, strict=True)):
        if split == "test":
            continue
        if label == 0:
            assert not masks[i].any(), i
        elif previous["mask"][i].any():
            assert masks[i].equal(previous["mask"][i]), i
        else:
            assert masks[i].eq(IGNORE).all(), i
    metrics = json.loads((run / "segmenter/pseudo-gradcam-otsu-r1/metrics.json").read_text())
    assert metrics["trained_on"] == "gradcam-otsu-r1"
    jobs = planned_jobs(workdir, "--configfile", name)
    # The other recipes' rounds, and the 5 fine-tuned from the labels' choice, whose
    # candidates are every round's U-Net too, with the 2 mixed count starts.
    assert jobs["masks"] == 3 and jobs["train_segmenter"] == 3 + 5 + 2
    assert jobs["choose_segmenter"] == jobs["choose_masks"] == 1
    assert jobs["evaluate"] == 1


def test_saliency_metrics_with_faithfulness_and_intervals(workdir):
    run = workdir / "results" / "tiny"
    metrics = pd.read_csv(run / "eval" / "saliency_metrics.csv")
    assert set(metrics["map"]) == {"gradcam", "integrated_gradients", "lrp", "counterfactual"}
    scores = ["pointing_game", "relevance_mass_accuracy", "auroc", "dice_otsu", "dice_best"]
    assert metrics[scores].notna().all().all() and (metrics["n_images"] > 0).all()
    test = metrics[metrics["split"] == "test"]
    assert test[["deletion_auc", "insertion_auc", "sanity_spearman_abs"]].notna().all().all()
    summary = pd.read_csv(run / "summary.csv")
    scored = summary[summary["n_positive"] > 0]
    assert (scored["dice_ci_low"] <= scored["dice"] + 1e-9).all()
    assert (scored["dice"] <= scored["dice_ci_high"] + 1e-9).all()
    pairs = pd.read_csv(run / "eval" / "comparisons.csv")
    assert {"a", "b", "difference", "ci_low", "ci_high", "verdict"} <= set(pairs.columns)


def test_the_report_opens_in_a_browser(workdir):
    """Snakemake's HTML report in headless Chromium (tests/browser.py: check_report)."""
    from tests.browser import CHROMIUM, check_report

    report = workdir / "results" / "tiny" / "report.html"
    snakemake(workdir, "--configfile", "tiny.yaml", "--report", str(report))
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    shown = check_report(report, workdir / "report.png")
    assert shown["figures"] >= 7 and "Few masks" in shown["categories"]


def test_the_slurm_profile_on_a_real_slurm_cluster(workdir, tmp_path, capsys):
    """The tiny config through workflow/profiles/slurm on a real one-node SLURM
    (tests/slurm/cluster.py): every cluster job goes through sbatch, GPU jobs get their
    own CUDA_VISIBLE_DEVICES, a job cancelled with scancel fails the run and a rerun
    completes it, and the outputs equal the local run's. Runs where CI is set (Debian's
    SLURM is installed when missing) or XAISEG_SLURM=1."""
    from tests.slurm.cluster import LocalSlurm

    if not (os.environ.get("CI") or os.environ.get("XAISEG_SLURM")):
        pytest.skip("the SLURM test runs where CI or XAISEG_SLURM is set")
    project = _slurm_project(tmp_path)
    shutil.copy(workdir / "tiny.yaml", project / "tiny.yaml")
    with LocalSlurm(tmp_path / "slurm") as cluster:
        command, env = _slurm_command(project, cluster, "tiny.yaml")
        first = subprocess.Popen(command, cwd=project, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        cancelled = _cancel_when_running(cluster, "train_classifier")
        out_first = first.communicate(timeout=1200)[0]
        assert first.returncode != 0, out_first[-3000:]
        assert cancelled in out_first, out_first[-3000:]
        second = subprocess.run(command, cwd=project, env=env, text=True, capture_output=True)
        printed = second.stdout + second.stderr
        assert second.returncode == 0, printed[-4000:]
        jobs = cluster.jobs()
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", out_first + printed)
    assert len(submitted) >= 20 and set(submitted) <= {j["id"] for j in jobs}
    with capsys.disabled():  # into the CI log: the jobs really went through sbatch
        print(f"\nSLURM: {len(submitted)} jobs through sbatch, ids {', '.join(submitted)};"
              f" job {cancelled} cancelled with scancel, the rerun completed")  # fmt: skip
    run, local = project / "results" / "tiny", workdir / "results" / "tiny"
    provenance = json.loads((run / "classifier" / "provenance.json").read_text())
    assert provenance["job"]["SLURM_JOB_ID"] in submitted
    if cluster.gpus:
        assert provenance["job"]["CUDA_VISIBLE_DEVICES"] in {"0", "1"}  # its own fake GPU
    assert (run / "summary.csv").read_text() == (local / "summary.csv").read_text()
    for model in ("classifier", "segmenter/supervised", "segmenter/pseudo-gradcam-otsu"):
        ours, theirs = (r / model / "model.safetensors" for r in (run, local))
        assert ours.read_bytes() == theirs.read_bytes(), model


def test_shard_groups_through_a_real_slurm_cluster(workdir, tmp_path):
    """The tiny config with group_size 20, every stage, through the SLURM profile on a
    real one-node SLURM: the group jobs go through sbatch, the plan and joins stay local,
    and the tables, kept sheet and data equal the local run's without groups. About 9
    minutes on two cores, so not in CI: runs where XAISEG_SLURM_GROUPS=1."""
    from tests.slurm.cluster import LocalSlurm

    if not os.environ.get("XAISEG_SLURM_GROUPS"):
        pytest.skip("the grouped SLURM run is by hand: XAISEG_SLURM_GROUPS=1")
    project = _slurm_project(tmp_path)
    name = write_config(project, "groups.yaml", run="tiny_groups", group_size=20)
    with LocalSlurm(tmp_path / "slurm") as cluster:
        command, env = _slurm_command(project, cluster, name)
        result = subprocess.run(command, cwd=project, env=env, text=True, capture_output=True)
        printed = result.stdout + result.stderr
        assert result.returncode == 0, printed[-4000:]
        jobs = {j["id"] for j in cluster.jobs()}
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", printed)
    assert len(submitted) >= 40 and set(submitted) <= jobs
    run, local = project / "results" / "tiny_groups", workdir / "results" / "tiny"
    for stage in ("groups/data/shards/0", "groups/eval/images/2"):
        record = json.loads((run / stage / "provenance.json").read_text())
        assert record["job"]["SLURM_JOB_ID"] in submitted, stage
    assert "SLURM_JOB_ID" not in json.loads((run / "data" / "provenance.json").read_text())["job"]
    names = ["summary.csv", "eval/per_image.csv", "eval/saliency_metrics.csv", "sheet.tsv"]
    names += [
        "data/index.json",
        *(f"data/{s}" for s in json.loads((local / "data/index.json").read_text())["shards"]),
    ]
    for name in names:
        assert (run / name).read_bytes() == (local / name).read_bytes(), name


def _slurm_project(tmp_path: Path) -> Path:
    """A copy of the project for a SLURM run; skips where SLURM cannot be installed."""
    from tests.slurm.cluster import install

    problem = install()
    if problem:
        pytest.skip(problem)
    return copy_project(tmp_path / "project")


def _slurm_command(project: Path, cluster, config: str) -> tuple[list[str], dict[str, str]]:
    """Snakemake through the site's SLURM profile, and the environment that reaches it."""
    profile = _site_profile(project / "site", cluster.partition)
    command = [sys.executable, "-m", "snakemake", "--profile", str(profile),
               "--workflow-profile", "none", "--configfile", config]  # fmt: skip
    env = venv_env(cluster.env)
    return command, env


def _site_profile(folder: Path, partition: str) -> Path:
    """workflow/profiles/slurm with what is the site's to choose set for this machine:
    its partition, one thread per job (two cores), small memory, no account."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    profile["default-resources"] = {**profile["default-resources"], "slurm_partition": partition,
                                    "mem_mb": 1000}  # fmt: skip
    profile["set-threads"] = dict.fromkeys(profile["set-threads"], 1)
    profile["set-resources"] = {
        r: {**v, "mem_mb": 1000} for r, v in profile["set-resources"].items()
    }
    profile |= {"jobs": 2, "slurm-no-account": True, "slurm-init-seconds-before-status-checks": 1}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def _cancel_when_running(cluster, rule: str, timeout: float = 900) -> str:
    """scancel the first job of ``rule`` once SLURM runs it; returns its id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for job in cluster.jobs():
            if job["state"] == "RUNNING" and rule in job["comment"]:
                time.sleep(3)  # let it start training
                cluster.cancel(job["id"])
                return job["id"]
        time.sleep(1)
    raise AssertionError(f"no {rule} job ever ran: {cluster.jobs()}")
