"""Dagster wiring, one module per stage; loaded by `segmentation_pipeline.definitions`."""
