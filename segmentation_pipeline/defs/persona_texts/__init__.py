"""Dagster wiring of the persona_texts domain (group `persona_texts`): `persona_text_corpus` (the
parsed persona collection, optionally with the retail personas) -> `persona_text_analysis` (clusters,
themes, classification, quality, dissimilarity matrix, redundant pairs, interactive map, similarity
index, every file under `persona_texts/` of the output set), and their checks. The work itself is the
Dagster-free `segmentation_pipeline.persona_texts` core; these modules only read the config, write
through `layout` into the run's staging folder and record what was written."""
