"""A model package: what ``xaiseg predict`` needs to segment new scans, in one folder.

The layout follows MONAI bundles where it fits::

    model/
      configs/metadata.json   what the package is: classes, finding, versions, source run
      configs/inference.json  preprocessing, slicing axis, gate, saliency maps
      models/classifier/      model.json + model.safetensors (the test-time gate)
      models/segmenter/       model.json + model.safetensors (the chosen U-Net)
      provenance.json         hashes of everything above and of the run's files it came from

Everything is JSON and safetensors: nothing is unpickled when a package is opened.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from xaiseg.data.artifacts import read_val_threshold
from xaiseg.errors import XaisegError
from xaiseg.evaluate.headline import headline_recipe, summary_rows
from xaiseg.integrity import verified_bytes
from xaiseg.models import NetworkSpec, load_network
from xaiseg.provenance import package_versions, write_json, write_provenance
from xaiseg.run_plan import pseudo_segmenter
from xaiseg.settings import PreprocessSettings

METADATA = Path("configs/metadata.json")
INFERENCE = Path("configs/inference.json")
CLASSIFIER = Path("models/classifier")
SEGMENTER = Path("models/segmenter")
# Preprocessing fields that describe the training set, not how one image is prepared.
RUN_ONLY = ("val_fraction", "test_fraction", "shard_size", "on_bad_input", "roots", "seed")


@dataclass(frozen=True)
class Inference:
    """How an image becomes the networks' input, and what their outputs mean."""

    preprocess: dict[str, Any]
    segmenter: str  # the run's name for it, e.g. "pseudo-gradcam-otsu"
    gate_threshold: float  # the classifier's probability of the finding that passes
    gate_applied: bool  # whether masks of images below it are emptied (as the run did)
    slice_axis: int = 2  # RAS+ axis a volume is cut along for a 2D model
    saliency: dict[str, dict[str, Any]] = field(default_factory=dict)

    def preprocess_settings(self) -> PreprocessSettings:
        known = {f.name for f in fields(PreprocessSettings)}
        values = {k: v for k, v in self.preprocess.items() if k in known}
        for key in ("classes", "finding", "percentiles"):
            if key in values:
                values[key] = tuple(values[key])
        return PreprocessSettings(**values)


@dataclass(frozen=True)
class ModelPackage:
    folder: Path
    inference: Inference
    metadata: dict[str, Any]

    def networks(self) -> tuple[Any, NetworkSpec, Any, NetworkSpec]:
        """(classifier, its spec, segmenter, its spec), in eval mode on the CPU."""
        classifier, classifier_spec = load_network(self.folder / CLASSIFIER)
        segmenter, segmenter_spec = load_network(self.folder / SEGMENTER)
        return classifier, classifier_spec, segmenter, segmenter_spec


def resolve_segmenter(run_dir: Path, name: str) -> str:
    """A segmenter folder's name; ``headline`` reads the run's summary for it."""
    if name != "headline":
        return name
    summary = run_dir / "summary.csv"
    if not summary.is_file():
        raise XaisegError(f"{summary}: missing; run the workflow's evaluation to pick the headline")
    recipe = headline_recipe(summary_rows(run_dir))
    if recipe is None:
        raise XaisegError(f"{summary}: no weak segmenter row to pick a headline from")
    return pseudo_segmenter(recipe)


def export_model(
    run_dir: str | Path, segmenter: str, out: str | Path, slice_axis: int = 2
) -> ModelPackage:
    """Write the package of ``run_dir``'s classifier and segmenter ``segmenter``
    (a folder name under ``segmenter/``, or ``headline``) into ``out``, atomically."""
    run_dir, out = Path(run_dir), Path(out)
    name = resolve_segmenter(run_dir, segmenter)
    sources = {
        CLASSIFIER: run_dir / "classifier",
        SEGMENTER: run_dir / "segmenter" / name,
    }
    for folder in sources.values():
        if not (folder / "model.safetensors").is_file():
            raise XaisegError(f"{folder}: no trained model there (model.safetensors missing)")
    preprocess = _record(run_dir / "data")["params"]
    segmenter_params = _record(sources[SEGMENTER])["params"]
    gate = segmenter_params.get("gate_threshold")
    threshold = read_val_threshold(run_dir / "classifier" / "metrics.json")
    if gate == "val_fpr":  # the cut the segmenter stage chose, in its metrics
        gate = json.loads((sources[SEGMENTER] / "metrics.json").read_text())["gate_threshold"]
    inference = Inference(
        preprocess={k: v for k, v in preprocess.items() if k not in RUN_ONLY},
        segmenter=name,
        gate_threshold=threshold if gate in (None, "val") else float(gate),
        gate_applied=gate is not None,
        slice_axis=slice_axis,
        saliency=_classifier_maps(run_dir),
    )
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    for target, source in sources.items():
        (staging / target).mkdir(parents=True)
        for file in ("model.json", "model.safetensors"):
            (staging / target / file).write_bytes(verified_bytes(source / file))
    spec = json.loads((staging / SEGMENTER / "model.json").read_text())
    metadata = {
        "name": f"xaiseg {run_dir.name} {name}",
        "task": "binary segmentation of the finding, gated by a classifier",
        "classes": spec["classes"],
        "finding": preprocess.get("finding") or [spec["classes"][-1]],
        "inputs": {
            "channels": preprocess["channels"],
            "image_size": preprocess["image_size"],
            "spatial_dims": preprocess["spatial_dims"],
        },
        "outputs": {"mask": "0 background, 1 finding", "probability": "of the finding, 0 to 1"},
        "versions": package_versions(),
        "source_run": run_dir.name,
    }
    write_json(staging / METADATA, metadata)
    write_json(staging / INFERENCE, asdict(inference))
    inputs = [p / f for p in sources.values() for f in ("model.safetensors", "provenance.json")]
    write_provenance(
        staging,
        stage="export",
        params={"segmenter": name, "slice_axis": slice_axis},
        inputs=[*inputs, run_dir / "data" / "provenance.json"],
    )
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return read_package(out)


def _record(folder: Path) -> dict:
    path = folder / "provenance.json"
    if not path.is_file():
        raise XaisegError(f"{path}: missing; the stage that writes {folder} did not finish")
    return json.loads(path.read_text())


def _classifier_maps(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The run's gradient maps of its classifier, as ``predict --saliency`` can redo
    them (maps of other models, the counterfactual's included, are left out)."""
    maps = {}
    for record in sorted((run_dir / "saliency").glob("*/provenance.json")):
        params = json.loads(record.read_text())["params"]
        if params.get("model", "classifier") == "classifier":
            keep = ("method", "target_layer", "options", "target")
            maps[params["map"]] = {k: params[k] for k in keep if k in params}
    return maps


def read_package(folder: str | Path) -> ModelPackage:
    """Open a package, its files checked against its provenance."""
    folder = Path(folder)
    if not (folder / INFERENCE).is_file():
        raise XaisegError(f"{folder}: not a model package ({INFERENCE} missing); see xaiseg export")
    values = json.loads(verified_bytes(folder / INFERENCE))
    metadata = json.loads(verified_bytes(folder / METADATA))
    return ModelPackage(folder, Inference(**values), metadata)
