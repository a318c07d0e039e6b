"""Reading ahead and writing behind: order kept, errors raised where they belong."""

import time

import numpy as np
import pytest
import torch

from xaiseg.data.artifacts import map_rows, pack_maps
from xaiseg.data.streams import Background, prefetched


def test_prefetched_keeps_the_order_and_raises_the_producers_error_in_place():
    assert list(prefetched(range(7), depth=2)) == list(range(7))

    def broken():
        yield 1
        raise ValueError("shard 2 is corrupt")

    items = prefetched(broken())
    assert next(items) == 1
    with pytest.raises(ValueError, match="shard 2 is corrupt"):
        next(items)


def test_background_calls_run_in_order_and_finish_raises_their_error():
    done = []

    def slow(value):
        time.sleep(0.01 * (3 - value))  # the first call is the slowest
        done.append(value)

    background = Background(depth=1)
    for value in range(3):
        background.submit(slow, value)
    background.finish()
    assert done == [0, 1, 2]
    failing = Background()
    failing.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.finish()


def test_maps_are_stored_scaled_to_a_largest_magnitude_of_one():
    raw = torch.tensor([[[-2.0, 1.0], [0.5, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]).unsqueeze(1)
    maps, scales = pack_maps(raw)
    assert maps.dtype == torch.float16 and scales.tolist() == [2.0, 1.0]  # zeros: scale 1
    rows = map_rows(maps, scales)
    assert rows[0]["map"].ravel().tolist() == [-1.0, 0.5, 0.25, 0.0]
    assert rows[0]["scale"] == np.float32(2.0) and not rows[1]["map"].any()
