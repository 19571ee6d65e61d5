"""Freed memory goes back to the system when a step ends (orchestration.memory)."""

from types import SimpleNamespace

import numpy as np
import pytest

from segmentation_pipeline.orchestration import memory


def _entry(kind: str | None):
    return SimpleNamespace(dagster_event=None if kind is None else SimpleNamespace(event_type_value=kind))


def test_memory_is_released_when_a_step_ends_and_only_then(monkeypatch):
    released = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: released.append(True))
    for kind in (None, "STEP_START", "ASSET_MATERIALIZATION", "STEP_OUTPUT", "STEP_SUCCESS", "STEP_FAILURE"):
        memory.release_after_steps(_entry(kind))
    assert len(released) == 2


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(memory._GLIBC is None, reason="malloc_trim is glibc's")
def test_fragmented_free_blocks_go_back_to_the_system():
    """Half of 400 MB of 64 kB blocks freed in a checkerboard stays in the heap until trimmed."""
    blocks = [np.ones(8_192) for _ in range(6_400)]  # 64 kB each: below the mmap threshold
    del blocks[::2]
    before = _rss_mb()
    memory.release_freed_memory()
    assert before - _rss_mb() > 100
