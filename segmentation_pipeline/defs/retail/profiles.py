"""Profile stage: per method, the LLM-ready cluster profile as JSON and YAML plus a ready-to-send prompt."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.clustering import METHODS, ClusteringResult
from segmentation_pipeline.orchestration.conventions import OWNERS, REFRESH_WHEN_UPSTREAM_CHANGES
from segmentation_pipeline.clustering.support import SkippedMethod
from segmentation_pipeline.orchestration.resources import PipelineSettings, record_outputs, record_skipped
from segmentation_pipeline.retail import profiles
from segmentation_pipeline.storage import atomic_write_text


def _profile_asset(method: str) -> dg.AssetsDefinition:
    @dg.asset(
        automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
        name=f"{method}_profile",
        group_name="profiles",
        io_manager_key="object_io_manager",
        kinds={"json", "yaml"},
        owners=OWNERS,
        ins={"result": dg.AssetIn(method)},
        description=(
            f"Cluster profile of `{method}`: metadata, metrics, and per cluster its size, centre in original "
            "units, feature statistics, RFM segment mix and top departments, written as "
            f"`{layout.cluster_profile(method, 'json')}` and `.yaml` (equal content) and "
            f"`{layout.llm_prompt(method)}`."
        ),
    )
    def _profile(
        context: dg.AssetExecutionContext,
        settings: PipelineSettings,
        result,  # a ClusteringResult, or SkippedMethod when the method did not run
        customer_features_basic: pd.DataFrame,
    ):  # a dict, or SkippedMethod
        if isinstance(result, SkippedMethod):
            return record_skipped(context, settings, result)
        timestamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        profile = profiles.build_profile(result, customer_features_basic, timestamp=timestamp)
        staging = settings.staging(context.run.run_id)
        documents = profiles.profile_documents(profile)
        files = {
            layout.cluster_profile(method, "json"): documents["json"],
            layout.cluster_profile(method, "yaml"): documents["yaml"],
            layout.llm_prompt(method): documents["prompt"],
        }
        for relative, text in files.items():
            atomic_write_text(staging.path(relative), text)
        sizes = pd.DataFrame(
            [
                {"cluster": name, "size": cluster["size"], "percentage": cluster["percentage"]}
                for name, cluster in profile["clusters"].items()
            ]
        )
        record_outputs(context, settings, list(files), sizes, clusters=dg.MetadataValue.md(sizes.to_markdown(index=False)))
        return profile

    return _profile


profile_assets = [_profile_asset(method) for method in METHODS]
