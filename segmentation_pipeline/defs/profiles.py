"""Profile stage: per method, the LLM-ready cluster profile as JSON and YAML plus a ready-to-send prompt."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from segmentation_pipeline.retail import profiles
from segmentation_pipeline.clustering import METHODS, ClusteringResult
from segmentation_pipeline.defs.ingest import OWNERS
from segmentation_pipeline.defs.resources import PipelineSettings, publish
from segmentation_pipeline.defs.sensors import REFRESH_WHEN_UPSTREAM_CHANGES


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
            f"`profiles/{method}_cluster_profile.json` and `.yaml` (equal content) and "
            f"`profiles/{method}_llm_prompt.md`."
        ),
    )
    def _profile(
        context: dg.AssetExecutionContext,
        settings: PipelineSettings,
        result: ClusteringResult,
        customer_features_basic: pd.DataFrame,
    ) -> dict:
        timestamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        profile = profiles.build_profile(result, customer_features_basic, timestamp=timestamp)
        files = profiles.write_profile(profile, settings.output_dir() / "profiles")
        sizes = pd.DataFrame(
            [
                {"cluster": name, "size": cluster["size"], "percentage": cluster["percentage"]}
                for name, cluster in profile["clusters"].items()
            ]
        )
        publish(context, settings, files, sizes, clusters=dg.MetadataValue.md(sizes.to_markdown(index=False)))
        return profile

    return _profile


profile_assets = [_profile_asset(method) for method in METHODS]
