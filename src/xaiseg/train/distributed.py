"""Data-parallel training over the processes ``torchrun`` starts: one per GPU (NCCL),
or several on the CPU (gloo). Every process draws the same shuffled batches and takes
its share of each (items keep their own augmentation seeds, so the shares are the
items one process would have seen); DDP averages the gradients; the first process
alone writes checkpoints and artifacts. Without torchrun all of this is a no-op."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def start() -> None:
    """Join torchrun's process group, when torchrun started several processes."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2 or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when several processes train it."""
    if world_size() < 2:
        return model
    ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def summed(values: list[float], device: torch.device) -> list[float]:
    """``values`` summed over the processes."""
    if world_size() < 2:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


class ShareOfBatches(Sampler[list[int]]):
    """This process's share of each shuffled batch: the order is drawn from
    ``generator`` as a single process's loader draws it, then items ``rank::world``. A
    last batch with fewer items than processes is left out (a process without items
    would stall the others)."""

    def __init__(
        self, n: int, batch_size: int, generator: torch.Generator, drop_last: bool
    ) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.drop_last = drop_last
        self.rank, self.world = rank(), world_size()

    def _batches(self) -> list[list[int]]:
        order = torch.randperm(self.n, generator=self.generator).tolist()
        batches = [order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        minimum = self.batch_size if self.drop_last else self.world
        return [b for b in batches if len(b) >= minimum]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches():
            yield batch[self.rank :: self.world]

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (rest > 0 and not self.drop_last and rest >= self.world)
