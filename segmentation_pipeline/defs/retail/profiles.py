"""Profile stage: per method, the LLM-ready cluster profile as JSON and YAML plus a ready-to-send prompt."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.clustering import METHODS
from segmentation_pipeline.clustering.support import SkippedMethod
from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.orchestration.resources import (
    LLMNarrator,
    PipelineSettings,
    record_outputs,
    record_skipped,
)
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
        ins={"fitted": dg.AssetIn(method), "built_personas": dg.AssetIn(f"{method}_personas")},
        deps=["customer_features_basic"],
        description=(
            f"Cluster profile of `{method}`: metadata, metrics, and per cluster its size, centre in original "
            "units, feature statistics, RFM segment mix, top departments and the numbers its persona uses "
            f"(revenue share, value index, tier, countries), written as `{layout.cluster_profile(method, 'json')}` "
            f"and `.yaml` (equal content), the ready-to-send `{layout.llm_prompt(method)}` and, when the LLM "
            f"is enabled and answers, `{layout.llm_narrative(method)}` (`llm_narrative_status` says which)."
        ),
    )
    def _profile(
        context: dg.AssetExecutionContext,
        settings: PipelineSettings,
        llm: LLMNarrator,
        fitted,  # MethodRuns, or SkippedMethod when the method did not run
        built_personas,  # a dict, or SkippedMethod
    ):  # a dict, or SkippedMethod
        if isinstance(fitted, SkippedMethod):
            return record_skipped(context, settings, fitted)
        features = settings.read_table(
            "customer_features_basic",
            context.run.run_id,
            lambda available: profiles.profile_columns(available, fitted.result.features_used),
        )
        timestamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        profile = profiles.build_profile(fitted.result, features, timestamp=timestamp, personas=built_personas)
        staging = settings.staging(context.run.run_id)
        documents = profiles.profile_documents(profile)
        files = {
            layout.cluster_profile(method, "json"): documents["json"],
            layout.cluster_profile(method, "yaml"): documents["yaml"],
            layout.llm_prompt(method): documents["prompt"],
        }
        narrative = llm.narrate(documents["prompt"], context.log)
        if narrative.text:
            files[layout.llm_narrative(method)] = narrative.text
        for relative, text in files.items():
            atomic_write_text(staging.path(relative), text)
        sizes = pd.DataFrame(
            [
                {"cluster": name, "size": cluster["size"], "percentage": cluster["percentage"]}
                for name, cluster in profile["clusters"].items()
            ]
        )
        record_outputs(
            context,
            settings,
            list(files),
            sizes,
            unit="clusters",
            clusters=dg.MetadataValue.md(sizes.to_markdown(index=False)),
            llm_narrative_status=narrative.status,
        )
        return {**profile, "llm_narrative": {"status": narrative.status, "text": narrative.text}}

    return _profile


profile_assets = [_profile_asset(method) for method in METHODS]
