"""The evaluation stage: per-image CSV, summary CSV and Markdown, overlay figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.figures import overlay_grid
from xaiseg.evaluate.report import render_report
from xaiseg.evaluate.tables import Evaluated, per_image_table, summary_table, to_markdown
from xaiseg.masks.build import load_masks
from xaiseg.provenance import write_provenance, write_text
from xaiseg.saliency.compute import load_maps
from xaiseg.saliency.normalize import normalize_maps


def evaluate(
    data_dir: str | Path,
    things: Sequence[Evaluated],
    saliency_dirs: dict[str, Path],
    out_dir: str | Path,
    n_figure: int = 6,
    seed: int = 0,
    classifier_metrics: Path | None = None,
) -> None:
    out = Path(out_dir)
    per_image = per_image_table(data_dir, things)
    summary = summary_table(per_image)
    write_text(out / "per_image.csv", per_image.to_csv(index=False))
    write_text(out / "summary.csv", summary.to_csv(index=False))
    write_text(out / "summary.md", to_markdown(summary))
    write_text(out / "report.md", render_report(Path(data_dir), summary, classifier_metrics))
    _figure(data_dir, things, saliency_dirs, out / "figures" / "overlays.png", n_figure, seed)
    write_provenance(
        out,
        stage="evaluate",
        params={
            "things": [f"{t.method}:{t.mask_rule}:{t.model}" for t in things],
            "n_figure": n_figure,
        },
        inputs=[Path(data_dir) / "index.json", *[t.masks_dir / "index.json" for t in things]],
        seed=seed,
    )


def _figure(data_dir, things, saliency_dirs, path: Path, n: int, seed: int) -> None:
    """Test images with a lesion, chosen by a seeded draw so reruns match."""
    store = ShardStore(data_dir)
    tensors = store.load(["image", "mask", "has_mask"])
    candidates = [
        i for i in store.positions("test") if tensors["has_mask"][i] and tensors["mask"][i].any()
    ]
    if not candidates:
        candidates = store.positions("test") or list(range(len(store.samples)))
    rng = np.random.default_rng(seed)
    rows = sorted(rng.choice(candidates, size=min(n, len(candidates)), replace=False).tolist())
    columns: dict[str, np.ndarray] = {}
    for method, folder in saliency_dirs.items():
        columns[f"{method} map"] = normalize_maps(load_maps(folder)[rows]).numpy()[:, 0]
    for thing in things:
        heading = (
            "supervised"
            if thing.model == "supervised"
            else f"{thing.method}/{thing.mask_rule}\n{thing.model}"
        )
        columns[heading] = load_masks(thing.masks_dir)[rows].numpy()[:, 0].astype(bool)
    overlay_grid(
        path,
        tensors["image"][rows, 0].numpy(),
        tensors["mask"][rows, 0].numpy().astype(bool),
        columns,
        [store.samples[i]["sample_id"] for i in rows],
    )
