"""Persona texts: cluster a collection of written personas, name their themes, classify them along
dimensions, list redundant ones and answer "which persona is closest to this description".

Dagster-free core; one concept per module: settings, corpus (parsing), generator (embedded corpus),
pipeline_personas, embedding, clusters, themes, classification, quality, similarity, visualization,
outputs, checks, analysis (all steps in order).
"""
