"""What a training or saliency job asks of the profile's ``gpu`` resource: on a CPU-only
workstation none, so that jobs run side by side as the cores allow."""

from xaiseg.snakemake_support import gpus_per_job


def test_a_machine_without_an_nvidia_device_runs_jobs_side_by_side(tmp_path):
    assert gpus_per_job("auto", local=True, dev=tmp_path) == 0
    (tmp_path / "nvidiactl").touch()  # the driver's control node is not a GPU
    assert gpus_per_job("auto", local=True, dev=tmp_path) == 0


def test_a_local_gpu_is_shared_one_job_at_a_time(tmp_path):
    (tmp_path / "nvidia0").touch()
    assert gpus_per_job("auto", local=True, dev=tmp_path) == 1
    assert gpus_per_job("cpu", local=True, dev=tmp_path) == 0  # run.device: cpu


def test_a_cluster_job_asks_for_a_gpu_wherever_snakemake_submits_it(tmp_path):
    # The submit host has no GPU; the nodes the jobs land on do.
    assert gpus_per_job("auto", local=False, dev=tmp_path) == 1
    assert gpus_per_job("cuda", local=True, dev=tmp_path) == 1
    assert gpus_per_job("cpu", local=False, dev=tmp_path) == 0
