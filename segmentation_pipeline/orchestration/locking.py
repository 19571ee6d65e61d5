"""One run at a time per output folder and per instance: a second command waits instead of
interleaving its writes. `filelock` gives the same exclusive lock on every operating system, and the
operating system releases it when the holder dies, so a killed run never blocks the next one."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = ".segmentation_pipeline.lock"
HOLDER_NAME = ".segmentation_pipeline.holder"  # who holds the lock, for the "waiting" message


@contextmanager
def folder_lock(folder: Path, purpose: str, emit: Callable[[str], None]) -> Iterator[None]:
    """Exclusive lock on `folder` for `purpose` (e.g. "run <id>"); waits, saying for whom, while
    another command holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_NAME)
    holder = folder / HOLDER_NAME
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = holder.read_text().strip() if holder.exists() else "another command"
        emit(f"waiting: {who} is using {folder}")
        lock.acquire()
    try:
        holder.write_text(f"{purpose} (pid {os.getpid()} on {socket.gethostname()})\n")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()
