"""The end-of-run stage table, from Snakemake's benchmark files."""

from xaiseg.runtimes import format_duration, stage_lines, stage_times

HEADER = "s\th:m:s\tmax_rss\n"


def _bench(folder, name, seconds):
    (folder / f"{name}.tsv").write_text(f"{HEADER}{seconds}\t0:00:00\t10.0\n")


def test_jobs_grouped_by_stage_and_summed(tmp_path):
    _bench(tmp_path, "saliency_gradcam", 60.5)
    _bench(tmp_path, "saliency_lrp", 20.0)
    _bench(tmp_path, "train_classifier", 3700.0)
    _bench(tmp_path, "train_counterfactual", 5.0)
    _bench(tmp_path, "preprocess", 9.4)
    (tmp_path / "unfinished.tsv").write_text(HEADER)  # a job killed before it wrote
    assert stage_times(tmp_path) == [
        ("train_classifier", 1, 3700.0),
        ("saliency", 2, 80.5),
        ("preprocess", 1, 9.4),
        ("train_counterfactual", 1, 5.0),
    ]
    lines = stage_lines(tmp_path)
    assert lines[0] == "  train_classifier        1 job   1 h 01 min"
    assert lines[1] == "  saliency                2 jobs  1 min 20 s"
    assert lines[-1] == "  all                     5 jobs  1 h 03 min"


def test_durations_read_as_a_person_would():
    assert [format_duration(s) for s in (0.4, 59.6, 61, 3599, 3661)] == [
        "0 s", "1 min 00 s", "1 min 01 s", "59 min 59 s", "1 h 01 min",
    ]  # fmt: skip
    assert stage_lines("/nonexistent") == []


def test_saliency_rates_read_from_provenance(tmp_path):
    import json

    from xaiseg.provenance import throughput
    from xaiseg.runtimes import saliency_rates

    (tmp_path / "gradcam").mkdir()
    (tmp_path / "lrp").mkdir()  # an older run: no throughput recorded
    record = {"device": "cuda:NVIDIA H200", "throughput": throughput(300, 1.5)}
    (tmp_path / "gradcam" / "provenance.json").write_text(json.dumps(record))
    (tmp_path / "lrp" / "provenance.json").write_text(json.dumps({"device": "cpu"}))
    assert saliency_rates(tmp_path) == [
        "  gradcam                 200.0 images/s  (300 images, cuda:NVIDIA H200)"
    ]
    assert throughput(3, 0.0)["images_per_second"] is None
