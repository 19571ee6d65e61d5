"""Dagster-side support shared by every module of `defs/`: the config resource, IO managers, metadata,
partitions, names and tags, and running the graph from the command line. No assets live here."""
