"""Dagster wiring of the leads domain (group `leads`): `raw_leads` (the leads export as read, or the
embedded synthetic leads) -> `cleaned_leads` + `rejected_leads` (every raw row in exactly one) ->
`lead_segments` (k-means on the nominal/ordinal encoding, the model bundle and the lead feature table
the REST service serves) -> `lead_conversion_score` (calibrated per-lead score, out-of-fold metrics)
-> `lead_personas` (ranked conversion personas, per-cluster conversion table, clustered-leads CSV) ->
`lead_charts` (dashboard and PCA PNGs), and their blocking checks. The work itself is the Dagster-free
`segmentation_pipeline.leads` core (`leads.pipeline.run_leads` is the same order in one call); these
modules only read the config, write through `layout` into the run's staging folder and record what
was written."""
