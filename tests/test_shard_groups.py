"""Per-sample stages run in shard groups and joined: the joined artifact is the one a
single job writes, byte for byte, and a join of the wrong parts is refused."""

from __future__ import annotations

import json

import pytest

from xaiseg.cli import main
from xaiseg.data.shards import ShardStore
from xaiseg.errors import XaisegError
from xaiseg.run_plan import group_count


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """40 demo images in shards of 6 (7 shards), a one-epoch classifier and its maps."""
    root = tmp_path_factory.mktemp("groups")
    assert main(["demo-data", "--out", str(root / "demo"), "--n-images", "40", "--size", "24"]) == 0
    args = ["preprocess", "--sheet", str(root / "demo" / "sheet.tsv"), "--out", str(root)]
    args += ["--classes", "normal", "lesion", "--image-size", "24", "--shard-size", "6"]
    assert main(args) == 0
    settings = json.dumps({"network": "resnet10", "epochs": 1, "batch_size": 8, "device": "cpu"})
    args = ["train-classifier", "--data", str(root / "data"), "--out", str(root / "classifier")]
    assert main([*args, "--settings", settings]) == 0
    return root


def _saliency(run, out, *group):
    args = ["saliency", "--data", str(run / "data"), "--model", str(run / "classifier")]
    args += ["--out", str(out), "--map", "gradcam", "--method", "gradcam"]
    args += ["--target-layer", "layer1", "--device", "cpu"]
    assert main([*args, *(["--group", *map(str, group)] if group else [])]) == 0
    return out


def _same_artifact(a, b):
    index_a, index_b = (json.loads((f / "index.json").read_text()) for f in (a, b))
    assert index_a == index_b
    for name in index_a["shards"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_saliency_in_groups_joins_to_the_single_jobs_maps(run, tmp_path):
    whole = _saliency(run, tmp_path / "whole")
    store = ShardStore(run / "data")
    assert len(store.index["shards"]) == 7 and group_count(len(store.index["shards"]), 3) == 3
    parts = [_saliency(run, tmp_path / f"g{g}", g, 3) for g in range(3)]
    assert len(ShardStore(parts[2]).samples) == 4  # the last group: one shard of 4
    args = ["join", "--data", str(run / "data"), "--out", str(tmp_path / "joined")]
    assert main([*args, "--parts", *map(str, parts)]) == 0
    _same_artifact(whole, tmp_path / "joined")
    record = json.loads((tmp_path / "joined" / "provenance.json").read_text())
    assert record["throughput"]["images"] == 40
    assert record["groups"] == [[0, 3], [1, 3], [2, 3]]

    swapped = [parts[1], parts[0], parts[2]]
    with pytest.raises(XaisegError, match="g1 does not hold the samples"):
        from xaiseg.data.join import join_artifact

        join_artifact(run / "data", swapped, tmp_path / "bad")
    with pytest.raises(XaisegError, match="hold 36 of the 40 samples"):
        join_artifact(run / "data", parts[:2], tmp_path / "short")


def test_masks_in_groups_learn_their_threshold_from_every_image(run, tmp_path):
    """A healthy-quantile rule learns one threshold from all train images, whichever
    group a job writes: the joined masks and counts are the single job's."""
    maps = _saliency(run, tmp_path / "maps")
    recipe = {"name": "hq", "maps": ["gradcam"], "rule": "healthy_quantile", "normalize": "none"}
    settings = json.dumps({"recipe": recipe, "gate_threshold": 0.5})
    base = ["masks", "--data", str(run / "data"), "--saliency", f"gradcam={maps}"]
    base += ["--classifier", str(run / "classifier"), "--settings", settings]
    assert main([*base, "--out", str(tmp_path / "whole")]) == 0
    parts = []
    for g in range(2):
        assert main([*base, "--out", str(tmp_path / f"m{g}"), "--group", str(g), "4"]) == 0
        parts.append(str(tmp_path / f"m{g}"))
    args = ["join", "--data", str(run / "data"), "--out", str(tmp_path / "joined")]
    assert main([*args, "--parts", *parts]) == 0
    _same_artifact(tmp_path / "whole", tmp_path / "joined")
    counts = [
        json.loads((tmp_path / f / "provenance.json").read_text())["counts"]
        for f in ("whole", "joined")
    ]
    assert counts[0] == counts[1]


def test_evaluation_in_groups_gives_the_single_jobs_tables(run, tmp_path):
    """Each group's job scores its own images; the summarising evaluation reads their
    tables and writes what one job scoring every image writes, byte for byte."""
    maps = _saliency(run, tmp_path / "maps")
    recipe = {"name": "otsu", "maps": ["gradcam"], "rule": "otsu"}
    settings = json.dumps({"recipe": recipe, "gate_threshold": 0.5})
    args = ["masks", "--data", str(run / "data"), "--saliency", f"gradcam={maps}"]
    args += ["--classifier", str(run / "classifier"), "--settings", settings]
    assert main([*args, "--out", str(tmp_path / "masks")]) == 0
    things = [f"otsu:pseudo_mask:{tmp_path / 'masks'}", f"otsu:segmenter:{tmp_path / 'masks'}"]
    common = ["--data", str(run / "data"), "--evaluate", *things, "--saliency", f"gradcam={maps}"]
    parts = [str(tmp_path / f"e{g}") for g in range(3)]
    for g, part in enumerate(parts):
        assert main(["evaluate-images", *common, "--out", part, "--group", str(g), "3"]) == 0
    evaluate = ["evaluate", *common, "--classifier-metrics", str(run / "classifier/metrics.json")]
    assert main([*evaluate, "--out", str(tmp_path / "whole")]) == 0
    assert main([*evaluate, "--out", str(tmp_path / "grouped"), "--groups", *parts]) == 0
    for table in ("per_image.csv", "summary.csv", "saliency_metrics.csv", "comparisons.csv"):
        whole, grouped = ((tmp_path / f / table).read_text() for f in ("whole", "grouped"))
        assert grouped == whole, table
    assert len((tmp_path / "whole" / "per_image.csv").read_text().splitlines()) == 1 + 2 * 40

    from xaiseg.evaluate.per_image import gather_groups
    from xaiseg.evaluate.tables import parse_evaluated

    with pytest.raises(XaisegError, match="e0: scored other models or maps"):
        gather_groups(parts, [parse_evaluated(things[0])], ["gradcam"])


@pytest.mark.parametrize(
    ("scope", "corrupt"),
    [("image", None), ("group", "demo0005")],
    ids=["aligned", "quarantined-and-per-patient"],
)
def test_preprocessing_in_groups_writes_the_single_jobs_data(tmp_path, scope, corrupt):
    """Checked once (the plan), decoded per group, joined: the data, kept sheet and
    quarantine of one job, byte for byte. A file quarantined in the first group
    shortens its shards (the join re-packs what follows), and per-patient intensity
    bounds hold for a patient whose slices two groups share (P004: rows 16 to 19)."""
    assert (
        main(["demo-data", "--out", str(tmp_path / "demo"), "--n-images", "40", "--size", "24"])
        == 0
    )
    if corrupt:
        sheet = (tmp_path / "demo" / "sheet.tsv").read_text()
        image = next(line.split("\t")[1] for line in sheet.splitlines() if line.startswith(corrupt))
        (tmp_path / "demo" / image).write_bytes(b"not an image")
    flags = ["--classes", "normal", "lesion", "--image-size", "24", "--shard-size", "6"]
    flags += ["--percentiles-over", scope, "--on-bad-input", "skip"]
    sheet = ["--sheet", str(tmp_path / "demo" / "sheet.tsv")]
    assert main(["preprocess", *sheet, "--out", str(tmp_path / "whole"), *flags]) == 0
    assert main(["preprocess-plan", *sheet, "--out", str(tmp_path / "plan"), *flags]) == 0
    parts = [str(tmp_path / f"g{g}") for g in range(3)]  # 18, 18 and 4 rows
    for g, part in enumerate(parts):
        args = ["preprocess", "--plan", str(tmp_path / "plan"), *sheet, "--group", str(g), "3"]
        assert main([*args, "--out", part, *flags]) == 0
    args = ["preprocess", "--plan", str(tmp_path / "plan"), *sheet, "--parts", *parts]
    assert main([*args, "--out", str(tmp_path / "joined"), *flags]) == 0

    whole, joined = tmp_path / "whole", tmp_path / "joined"
    _same_artifact(whole / "data", joined / "data")
    for name in ("sheet.tsv", "quarantine.tsv"):
        assert (joined / name).read_text() == (whole / name).read_text(), name
    index = json.loads((whole / "data" / "index.json").read_text())
    assert index["counts"]["kept"] == (39 if corrupt else 40) and len(index["shards"]) == 7
    if corrupt:
        assert corrupt in (whole / "quarantine.tsv").read_text()
        assert len(ShardStore(parts[0]).index["shards"]) == 3  # 17 rows: 6, 6 and 5

    with pytest.raises(XaisegError, match="g1 does not hold plan rows 0 to 17"):
        from xaiseg.data.preprocess_join import join_preprocessed
        from xaiseg.settings import PreprocessSettings

        settings = PreprocessSettings(classes=["normal", "lesion"], image_size=24, shard_size=6)
        join_preprocessed(
            tmp_path / "plan",
            tmp_path / "demo" / "sheet.tsv",
            [parts[1], parts[0], parts[2]],
            tmp_path / "x",
            settings,
        )
