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


@pytest.mark.skipif(memory._GLIBC is None, reason="malloc_trim is glibc's")
def test_fragmented_free_blocks_go_back_to_the_system():
    """Half of 400 MB of 64 kB blocks freed in a checkerboard stays in the heap until trimmed."""
    blocks = [np.ones(8_192) for _ in range(6_400)]  # 64 kB each: below the mmap threshold
    del blocks[::2]
    before = memory.resident_mb()
    memory.release_freed_memory(above_mb=before + 1)  # a smaller process is left as it is
    assert before - memory.resident_mb() < 10
    memory.release_freed_memory(above_mb=0)
    assert before - memory.resident_mb() > 100
