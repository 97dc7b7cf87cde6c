"""Coalescing single-resource requests made at the same time into the batch requests an API offers.

Apply runs changes concurrently, and each change asks about one resource; where the API takes many
names in one request (CloudWatch ``DescribeAlarms`` and ``DeleteAlarms``, at most 100 names), a
:class:`Batcher` gathers what the changes ask within a short linger and sends it in as few requests
as possible. The thread that arrives first sends for everyone (so the retry session of the plan or
apply it runs in governs the batch); every caller gets its own item's answer, or the batch's error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """``batcher(item)`` -> the value ``send([... item ...])`` maps it to (``None`` when absent).

    ``send`` takes at most ``size`` distinct items; the first caller waits ``linger`` seconds for
    others, then sends batches until none are pending.
    """

    def __init__(self, send: Callable[[list[K]], Mapping[K, V]], size: int, linger: float = 0.05) -> None:
        self.send, self.size, self.linger = send, size, linger
        self._lock = threading.Lock()
        self._pending: dict[K, list[Future[V | None]]] = {}
        self._sending = False
        self.sent: list[int] = []  # the size of every batch sent, for tests and benchmarks

    def __call__(self, item: K) -> V | None:
        done: Future[V | None] = Future()
        with self._lock:
            self._pending.setdefault(item, []).append(done)
            lead = not self._sending
            self._sending = True
        if lead:
            time.sleep(self.linger)
            while True:
                with self._lock:
                    keys = list(self._pending)[: self.size]
                    batch = {k: self._pending.pop(k) for k in keys}
                    if not batch:
                        self._sending = False
                        break
                    self.sent.append(len(batch))
                try:
                    found = self.send(list(batch))
                except BaseException as e:
                    for waiting in batch.values():
                        for f in waiting:
                            f.set_exception(e)
                else:
                    for k, waiting in batch.items():
                        for f in waiting:
                            f.set_result(found.get(k))
        return done.result()
