"""Benchmark harness: how fast each pipeline stage and the whole run are as the transaction log grows.

`python -m benchmarks.run --sizes 100000,1000000 [--large]`; see `benchmarks/run.py`.
"""
