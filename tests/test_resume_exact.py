"""Kill a real training job in the middle of epoch 2, rerun it: the final weights are
byte-identical to an uninterrupted run's, for the classifier and the segmenter."""

import pytest

from xaiseg.cli import main
from xaiseg.settings import ClassifierSettings, SegmenterSettings
from xaiseg.train import loop


class Killed(Exception):
    pass


@pytest.fixture
def data_dir(png_dataset, tmp_path):
    sheet, _ = png_dataset
    args = ["preprocess", "--sheet", str(sheet), "--out", str(tmp_path / "run")]
    args += ["--classes", "normal", "lesion", "--image-size", "16"]
    args += ["--val-fraction", "0.3", "--test-fraction", "0.3"]
    assert main(args) == 0
    return tmp_path / "run" / "data"


def _kill_in_epoch(monkeypatch, epoch: int) -> None:
    """Die after epoch ``epoch``'s training, before its state is saved (a kill -9 then
    loses the whole epoch, as a kill mid-epoch does)."""
    real = loop.save_training_state
    calls = []

    def save_or_die(folder, model, optimizer, meta, average=None):
        calls.append(meta["epoch"])
        if meta["epoch"] == epoch and not meta.get("finished"):
            raise Killed
        real(folder, model, optimizer, meta, average)

    monkeypatch.setattr(loop, "save_training_state", save_or_die)


def _train(kind, data_dir, out):
    if kind == "classifier":
        from xaiseg.train.classifier import train_classifier

        settings = ClassifierSettings(network="resnet10", epochs=3, batch_size=2, seed=1)
        train_classifier(data_dir, out, settings)
    else:
        from xaiseg.train.segmenter import train_segmenter

        options = {"channels": [4, 8], "strides": [2], "num_res_units": 1}
        settings = SegmenterSettings(epochs=3, batch_size=2, seed=1, network_options=options)
        train_segmenter(data_dir, out, settings)


@pytest.mark.parametrize("kind", ["classifier", "segmenter"])
def test_killed_then_rerun_equals_uninterrupted(kind, data_dir, tmp_path, monkeypatch):
    _train(kind, data_dir, tmp_path / "clean")
    with monkeypatch.context() as patch:
        _kill_in_epoch(patch, 2)
        with pytest.raises(Killed):
            _train(kind, data_dir, tmp_path / "killed")
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    _train(kind, data_dir, tmp_path / "killed")
    clean = (tmp_path / "clean" / "model.safetensors").read_bytes()
    assert (tmp_path / "killed" / "model.safetensors").read_bytes() == clean
    last = (tmp_path / "clean" / "checkpoint" / "last.safetensors").read_bytes()
    assert (tmp_path / "killed" / "checkpoint" / "last.safetensors").read_bytes() == last


@pytest.mark.parametrize("kind", ["classifier", "segmenter"])
def test_loader_workers_train_the_same_weights(kind, data_dir, tmp_path, monkeypatch):
    """Augmenting in two worker processes changes nothing in what is learnt."""
    from xaiseg.train import data

    _train(kind, data_dir, tmp_path / "main")
    monkeypatch.setattr(data, "loader_workers", lambda: 2)
    _train(kind, data_dir, tmp_path / "workers")
    for name in ("model.safetensors", "checkpoint/last.safetensors"):
        assert (tmp_path / "workers" / name).read_bytes() == (tmp_path / "main" / name).read_bytes()


def test_a_crash_between_weights_and_their_json_resumes_where_the_weights_are(
    data_dir, tmp_path, monkeypatch
):
    """The state of epoch 2 written, then the crash before its JSON (simulated: epoch
    1's last.json put back): the rerun resumes after epoch 2, as the weights say, and
    ends with the uninterrupted run's model."""
    import shutil

    _train("classifier", data_dir, tmp_path / "clean")
    saved = []
    real = loop.save_training_state

    def keep_each(folder, model, optimizer, meta, average=None):
        real(folder, model, optimizer, meta, average)
        saved.append(meta["epoch"])
        shutil.copy(folder / "last.json", folder.parent / f"json-{meta['epoch']}")
        if meta["epoch"] == 2 and not meta.get("finished"):
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(loop, "save_training_state", keep_each)
        with pytest.raises(Killed):
            _train("classifier", data_dir, tmp_path / "killed")
    killed = tmp_path / "killed"
    shutil.copy(killed / "json-1", killed / "checkpoint" / "last.json")
    resumed = []
    real_load = loop.load_training_state

    def note(*args):
        meta = real_load(*args)
        resumed.append(meta and meta["epoch"])
        return meta

    monkeypatch.setattr(loop, "load_training_state", note)
    _train("classifier", data_dir, killed)
    assert resumed == [2]
    clean = (tmp_path / "clean" / "model.safetensors").read_bytes()
    assert (killed / "model.safetensors").read_bytes() == clean
