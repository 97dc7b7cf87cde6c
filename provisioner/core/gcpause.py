"""Pausing Python's cyclic garbage collector around allocation-heavy work that makes no cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside; it resumes afterwards if it ran before (nests safely).

    Rendering allocates millions of short-lived containers that reference counting frees (builder
    objects, YAML node trees, intermediate dicts) while finished results pile up: collections set
    off by those allocations walk the whole heap again and find next to nothing (about 2 objects a
    job). What little cyclic garbage there is goes at the first collection after the block.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
