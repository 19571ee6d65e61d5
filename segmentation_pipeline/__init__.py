"""Customer segmentation pipeline: transactions -> RFM features -> clusters -> profiles."""

import os

# Arrow's default allocator (mimalloc) keeps the memory a table freed for its own reuse. A run executes
# every step in one process, so what a large step freed (a month of a 10^8-line log) would stay counted
# against every later step; the system allocator gives large blocks back at once. Set before anything
# imports pyarrow, and only when the user has not chosen a pool.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
