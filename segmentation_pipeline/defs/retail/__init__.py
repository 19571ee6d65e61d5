"""Dagster wiring of the retail domain: one module per stage."""
