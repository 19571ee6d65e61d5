"""The last step of every run: publish what the run wrote, as a whole (see `publication`)."""


from collections.abc import Sequence

import dagster as dg
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    PUBLICATION_ASSET,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.orchestration.metadata import table_metadata
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.orchestration.resources import PipelineSettings


def runs_to_publish(instance: dg.DagsterInstance, staged: list[str], own_run: str) -> list[str]:
    """This run, after any earlier run that succeeded without publishing (e.g. a subset launched from
    the UI without this asset), oldest first. Staged outputs of failed runs are never published."""
    others = [run_id for run_id in staged if run_id != own_run]
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=others)) if others else []
    earlier = [record for record in records if record.dagster_run.status == dg.DagsterRunStatus.SUCCESS]
    earlier.sort(key=lambda record: record.start_time or record.create_timestamp.timestamp())
    return [record.dagster_run.run_id for record in earlier] + ([own_run] if own_run in staged else [])


def publication_asset(upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """Depends on every other asset, so it runs last and only when every upstream step and every
    blocking check passed: a failed run never reaches it and publishes nothing."""

    @dg.asset(
        name=PUBLICATION_ASSET,
        group_name="publish",
        deps=list(upstream),
        kinds={"json"},
        owners=OWNERS,
        automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
        description=(
            "Publishes the run's outputs all at once: a new immutable set of files under `sets/`, made "
            f"current by one atomic symlink swap, with `{layout.MANIFEST}` naming every file with its asset, "
            "run and sha256. Months that left the data are dropped; the last sets are kept for rollback "
            "(`segmentation-pipeline outputs`)."
        ),
    )
    def published_outputs(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        folder = settings.output_folder()
        runs = runs_to_publish(context.instance, folder.staged_runs(), context.run.run_id)
        if not runs:
            raise dg.Failure("nothing to publish: no asset of this run (or of an earlier successful run) wrote outputs")
        published = folder.publish(runs, context.instance.get_dynamic_partitions(transaction_months.name))
        files = pd.DataFrame(
            [{"path": path, **info} for path, info in published.manifest["files"].items()],
            columns=["path", "asset", "run_id", "sha256", "bytes"],
        )
        return dg.MaterializeResult(
            metadata={
                **table_metadata(files, [layout.MANIFEST], unit="files"),
                "set_id": published.set_id,
                "runs_published": dg.MetadataValue.json(runs),
                "set_folder": dg.MetadataValue.path(str(published.path)),
                "metric/published_bytes": float(files["bytes"].sum()),
            }
        )

    return published_outputs
