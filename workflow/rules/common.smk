import hashlib
import json
import os
import shlex
from pathlib import Path

from snakemake.utils import validate

RUN = f"results/{config['run']}"
SRC = Path(workflow.basedir) / "src"
# Rules call the package from this checkout, so the code hashed below is the code run.
XAISEG = (
    f"PYTHONPATH={shlex.quote(str(SRC))}${{PYTHONPATH:+:$PYTHONPATH}} python -m xaiseg"
)

# Source files each stage runs; their content hash is a param, so editing a stage's
# code reruns that stage (Snakemake's code trigger only sees the rule's own text).
COMMON_CODE = ["cli.py", "errors.py", "provenance.py", "data/shards.py"]
STAGE_CODE = {
    "demo": ["demo.py", "io"],
    "preprocess": ["io", "data"],
    "classifier": ["data", "models", "train", "evaluate/metrics.py"],
    "saliency": ["saliency", "models", "train/classifier.py", "train/checkpoint.py"],
    "masks": ["masks", "saliency/normalize.py", "saliency/compute.py"],
    "segmenter": ["data", "models", "train", "masks/build.py", "evaluate/metrics.py"],
    "evaluate": [
        "evaluate",
        "masks/build.py",
        "saliency/compute.py",
        "saliency/normalize.py",
    ],
}


def code_hash(stage):
    files = []
    for entry in COMMON_CODE + STAGE_CODE[stage]:
        path = SRC / "xaiseg" / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(SRC).as_posix().encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def as_json(value):
    return json.dumps(value, sort_keys=True)


def sheet_path():
    if config["data"]["source"] == "demo":
        return f"{RUN}/demo_data/sheet.tsv"
    if config["data"]["source"] == "layout":
        return f"{RUN}/layout_sheet.tsv"
    sheet = config["data"]["sheet"]
    if not sheet or not Path(sheet).is_file():
        raise ValueError(f"config data.sheet: sample sheet {sheet!r} does not exist")
    validate_sheet_columns(sheet)
    return sheet


def validate_sheet_columns(sheet):
    """Fail at parse time on a sheet with missing columns; rows are checked in preprocess."""
    import pandas as pd

    frame = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    validate(frame, str(SRC / "xaiseg" / "io" / "sheet.schema.yaml"))


def layout_root():
    """The dataset folder: inside the extracted archive, or as given."""
    data = config["data"]
    if data.get("archive"):
        return f"{RUN}/raw/{data.get('root', '')}".rstrip("/")
    if not data.get("root") or not Path(data["root"]).is_dir():
        raise ValueError(
            f"config data.root: dataset folder {data.get('root')!r} does not exist"
        )
    return data["root"]


def pseudo_mask_pairs():
    return [(p["method"], p["rule"]) for p in config["masks"]["pseudo_masks"]]


def methods():
    return sorted({method for method, _ in pseudo_mask_pairs()})


def method_config(method):
    return config["saliency"]["methods"].get(method, {})


def layer_arg(method):
    layer = method_config(method).get("target_layer")
    return f"--target-layer {shlex.quote(layer)}" if layer else ""


def training_args(section):
    cfg = config[section]
    args = {
        "network": cfg.get("network"),
        "network-options": as_json(cfg.get("network_options", {})),
        "epochs": cfg.get("epochs"),
        "learning-rate": cfg.get("learning_rate"),
        "batch-size": cfg.get("batch_size"),
        "patience": cfg.get("patience"),
        "seed": config["seed"],
    }
    return " ".join(
        f"--{k} {shlex.quote(str(v))}" for k, v in args.items() if v is not None
    )


def segmenter_names():
    names = [f"pseudo-{m}-{r}" for m, r in pseudo_mask_pairs()]
    return names + (
        ["supervised"] if config["segmenter"].get("supervised", True) else []
    )


def evaluated_things():
    things = []
    for method, rule_name in pseudo_mask_pairs():
        things.append(
            f"{method}:{rule_name}:pseudo_mask:{RUN}/masks/{method}-{rule_name}"
        )
        things.append(
            f"{method}:{rule_name}:segmenter:{RUN}/segmenter/pseudo-{method}-{rule_name}/predictions"
        )
    if config["segmenter"].get("supervised", True):
        things.append(
            f"ground_truth:none:supervised:{RUN}/segmenter/supervised/predictions"
        )
    return things


def final_outputs():
    return [
        f"{RUN}/summary.csv",
        f"{RUN}/eval/summary.md",
        f"{RUN}/eval/report.md",
        f"{RUN}/eval/figures/overlays.png",
        f"{RUN}/classifier/metrics.json",
    ]
