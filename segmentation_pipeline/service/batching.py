"""Micro-batching: single-row requests that arrive together are placed in one vectorised call.

A bundle call has a fixed cost (input checks in scikit-learn, a DataFrame for the feature transform)
of a few hundred microseconds whether it sees 1 row or 1,000. Under concurrent load the event loop
hands several parsed requests to the application in the same iteration; each one queues its row and
the first schedules a flush at the end of that iteration, so the fixed cost is paid once per burst.
A lone request waits for nothing: its flush runs as soon as the loop has nothing else ready.
"""

from __future__ import annotations

import asyncio

import numpy as np

from segmentation_pipeline.service.segmenter import Placements, Segmenter


class MicroBatcher:
    def __init__(self) -> None:
        self._queued: dict[Segmenter, list[tuple[np.ndarray, asyncio.Future]]] = {}
        self._flush_scheduled = False

    async def place(self, segmenter: Segmenter, matrix: np.ndarray) -> tuple[Placements, int]:
        """Placements of a 1-row `matrix`, and the index of that row in them. (Any segmenter with a
        `stack` that joins its single-row inputs and a `place` of the joined input works the same way:
        a lead segmenter's rows are 1-row frames, its result carries the leads as read.)"""
        future = asyncio.get_running_loop().create_future()
        self._queued.setdefault(segmenter, []).append((matrix, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        queued, self._queued = self._queued, {}
        for segmenter, waiting in queued.items():
            try:
                placements = segmenter.place(segmenter.stack([matrix for matrix, _ in waiting]))
            except Exception as exc:  # every waiting request learns of it; none is left hanging
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for index, (_, future) in enumerate(waiting):
                if not future.done():  # a client that went away cancels its future
                    future.set_result((placements, index))
