"""The faithfulness stage: deletion, insertion and the randomisation sanity check of
one stored map, on a seeded draw of test images with a lesion."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.artifacts import raw_maps
from xaiseg.data.shards import ShardStore, check_same_samples
from xaiseg.devices import describe, resolve_device
from xaiseg.evaluate.faithfulness import deletion_insertion, passes_sanity, randomisation_test
from xaiseg.evaluate.picks import lesion_images
from xaiseg.models import load_network
from xaiseg.provenance import seed_everything, write_json, write_provenance, write_text
from xaiseg.saliency import METHODS
from xaiseg.saliency.compute import default_layer, make_target
from xaiseg.saliency.members import make_explainer
from xaiseg.settings import FaithfulnessSettings, MapSettings


def check_map(
    data_dir: str | Path,
    classifier_dir: str | Path,
    model_dir: str | Path,
    map_dir: str | Path,
    out_dir: str | Path,
    map_name: str,
    spec: MapSettings,
    settings: FaithfulnessSettings,
) -> dict:
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    store, stored = ShardStore(data_dir), ShardStore(map_dir)
    check_same_samples(store, stored)
    rows = lesion_images(store, settings.n_images, settings.seed)
    images = store.take(["image"], rows)["image"].to(device)
    maps = raw_maps(stored.take(["map", "scale"], rows)).to(device)
    classifier, classifier_spec = load_network(classifier_dir)
    deletion, insertion = deletion_insertion(
        classifier.to(device), images, maps, classifier_spec.target_class,
        settings.steps, settings.baseline,
    )  # fmt: skip
    model, model_spec = load_network(model_dir)
    method = METHODS[spec.method]
    layer = spec.target_layer or default_layer(model, model_spec, method)
    target = make_target(model_spec, spec.target, spec.region)

    def explain(net, batch):
        return make_explainer(method, net, layer, **spec.options)(batch, target).detach()

    cascade = randomisation_test(model.to(device), explain, images, settings.seed)
    ids = [store.sample_ids[r] for r in rows]
    per_image = pd.DataFrame(
        {"sample_id": ids, "deletion_auc": deletion, "insertion_auc": insertion}
    )
    last = cascade.iloc[-1] if len(cascade) else {"spearman": np.nan, "spearman_abs": np.nan}
    summary = {
        "map": map_name,
        "method": spec.method,
        "n_images": len(rows),
        "deletion_auc": float(deletion.mean()),
        "insertion_auc": float(insertion.mean()),
        "sanity_spearman": float(last["spearman"]),
        "sanity_spearman_abs": float(last["spearman_abs"]),
        "sanity_passed": passes_sanity(cascade, settings.max_spearman),
        "max_spearman": settings.max_spearman,
    }
    out = Path(out_dir)
    write_text(out / "deletion_insertion.csv", per_image.to_csv(index=False))
    write_text(out / "randomisation.csv", cascade.to_csv(index=False))
    write_json(out / "faithfulness.json", summary)
    write_provenance(
        out,
        stage="faithfulness",
        params={"map": map_name, **dataclasses.asdict(spec), **dataclasses.asdict(settings)},
        inputs=[
            Path(map_dir) / "index.json",
            Path(classifier_dir) / "model.safetensors",
            Path(model_dir) / "model.safetensors",
        ],
        seed=settings.seed,
        device=describe(device),
    )
    return summary
