"""Reading and writing beside the computing: the next shard is read, and finished rows
are written, by one background thread each, so that a GPU waits on neither."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

Item = TypeVar("Item")
_DONE = object()


def prefetched(items: Iterable[Item], depth: int = 1) -> Iterator[Item]:
    """``items``, each produced by a background thread up to ``depth`` ahead; an error
    raised there is raised here, at the item it broke."""
    ready: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                ready.put((item, None))
        except BaseException as err:  # handed to the consumer, raised there
            ready.put((None, err))
        ready.put((_DONE, None))

    threading.Thread(target=produce, daemon=True).start()
    while True:
        item, err = ready.get()
        if err is not None:
            raise err
        if item is _DONE:
            return
        yield item


class Background:
    """Calls run in order on one background thread, at most ``depth`` waiting: the
    caller goes on computing while the last results are copied and written."""

    def __init__(self, depth: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: list[Future] = []
        self.depth = depth

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        self._pending.append(self._pool.submit(call, *args))
        while len(self._pending) > self.depth:
            self._pending.pop(0).result()  # raises what the call raised

    def finish(self) -> None:
        """Wait for every call; the first error is raised."""
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pending = []
            self._pool.shutdown()
