"""The saliency stage: one map per image, streamed shard by shard, float16 shards.

Any model folder can be explained: a classifier (target: the finding, the predicted
class, or a named class) or a segmenter (target: the finding's logits summed over the
predicted mask -- Seg-Grad-CAM when the method is Grad-CAM).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from xaiseg.data.artifacts import map_rows, pack_maps
from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.data.streams import Background, prefetched
from xaiseg.devices import autocast, describe, resolve_device
from xaiseg.errors import XaisegError
from xaiseg.models import NetworkSpec, load_network
from xaiseg.models.layers import bottleneck
from xaiseg.provenance import seed_everything, throughput, write_provenance
from xaiseg.saliency import METHODS
from xaiseg.saliency.base import mirrored, multiscale
from xaiseg.saliency.members import make_explainer
from xaiseg.saliency.targets import ClassTarget, PixelSetTarget, PredictedClass, Target
from xaiseg.settings import SaliencySettings

CPU_BATCH = 32  # the CPU's batch when none is set: its maps are recorded to the byte


def make_target(spec: NetworkSpec, name: str, region: str | Sequence[int] = "predicted") -> Target:
    if name == "predicted":
        return PredictedClass()
    index = spec.target_class if name == "finding" else _class_index(spec, name)
    if spec.kind != "segmenter":
        return ClassTarget(index)
    return PixelSetTarget(index, "given" if region == "ground_truth" else region)


def default_layer(model, spec: NetworkSpec, method: type) -> str | None:
    """A segmenter's layer methods that need one default to: its bottleneck."""
    if method.needs_layer and spec.kind == "segmenter":
        return bottleneck(model)
    return None


def _class_index(spec: NetworkSpec, name: str) -> int:
    if name not in spec.classes:
        raise XaisegError(f"saliency target {name!r} is not a class of the model {spec.classes}")
    return spec.classes.index(name)


def compute_saliency(
    data_dir: str | Path,
    model_dir: str | Path,
    out_dir: str | Path,
    map_name: str,
    settings: SaliencySettings,
    group: tuple[int, int] | None = None,
) -> dict:
    """Maps of every image, or of shard group ``(number, shards_per_group)`` alone
    (``xaiseg join`` gathers the groups)."""
    seed_everything(settings.seed)
    config = settings.map(map_name)
    if config.method not in METHODS:
        raise XaisegError(f"saliency map {map_name!r}: unknown method {config.method!r}")
    device = resolve_device(settings.device)
    store = ShardStore(data_dir)
    store = store.group(*group) if group else store
    model, spec = load_network(model_dir)
    model.to(device)
    method = METHODS[config.method]
    layer = config.target_layer or default_layer(model, spec, method)
    explainer = make_explainer(method, model, layer, **config.options)
    target = make_target(spec, config.target, config.region)
    # The ground truth as the explained pixel set: each image's mask rides along.
    keys = ["image", "mask"] if config.region == "ground_truth" else ["image"]
    writer = ShardWriter(out_dir, store.index["shard_size"], store.first_shard)
    background = Background()  # copies the maps to the CPU and writes them
    size = settings.batch_size or (writer.shard_size if device.type == "cuda" else CPU_BATCH)
    # Timed from the first shard read to the last map written (start-up excluded).
    started = time.perf_counter()
    with tqdm(total=len(store.samples), desc=f"saliency {map_name}", mininterval=5) as bar:
        for shard in prefetched(_shards(store, keys, device, data_dir, map_name)):
            start = 0
            while start < len(shard["image"]):
                part = [shard[k][start : start + size] for k in keys]
                try:
                    maps = _explain(explainer, target, part, device, settings, config)
                except torch.cuda.OutOfMemoryError:
                    if settings.batch_size or size == 1:
                        raise
                    size //= 2  # as large as fits: halve and retry
                    torch.cuda.empty_cache()
                    continue
                background.submit(lambda m: [writer.add(r) for r in map_rows(*m)], pack_maps(maps))
                start += len(part[0])
                bar.update(len(part[0]))
    background.finish()
    seconds = time.perf_counter() - started
    writer.close(
        {
            "map": map_name,
            "method": config.method,
            "target_layer": layer,
            "target": config.target,
            "samples": [{"sample_id": s} for s in store.sample_ids],
        }
    )
    write_provenance(
        out_dir,
        stage="saliency",
        params={
            "map": map_name,
            **asdict(config),
            "batch_size": settings.batch_size,
        },
        inputs=[Path(data_dir), Path(model_dir) / "model.safetensors"],
        seed=settings.seed,
        device=describe(device),
        extra={
            "throughput": throughput(len(store.samples), seconds),
            "group": group,
            "batch_size_used": size,
        },
    )
    return {"images": len(store.samples), "device": describe(device)}


def _shards(store: ShardStore, keys: list[str], device: torch.device, data_dir, map_name: str):
    """The tensors of ``keys``, shard by shard, in pinned memory on CUDA (copied on)."""
    for shard in store.iter_shards():
        if "mask" in keys and "mask" not in shard:
            raise XaisegError(
                f"saliency map {map_name!r}: region ground_truth, but {data_dir} holds no masks"
            )
        if device.type == "cuda":
            shard = {k: shard[k].pin_memory() for k in keys}
        yield shard


def _explain(explainer, target, part, device, settings, config) -> torch.Tensor:
    """One batch's maps, on the device: images and (ground-truth) masks copied there."""
    images, *extra = (t.to(device, non_blocking=True) for t in part)
    extra = [(e == 1).float() for e in extra]
    with autocast(device, settings.precision):
        return multiscale(
            lambda x, e: mirrored(lambda y, f: explainer(y, target, f), x, e, config.mirror_axes),
            images,
            extra,
            config.scales,
        ).float()
