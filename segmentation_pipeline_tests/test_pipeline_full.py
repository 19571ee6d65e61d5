"""The whole graph on small synthetic data, as the CLI runs it: every asset, every check, every file."""

import json

import dagster as dg
import pandas as pd
import yaml

from segmentation_pipeline.clustering import METHODS, ModelBundle
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.orchestration.runner import run_graph
from segmentation_pipeline.publication import OutputFolder, file_sha256
from segmentation_pipeline_tests.conftest import write_config


def test_full_graph_materializes_and_every_check_passes(tmp_path):
    """The embedded default data, as a fresh clone runs it: every check passes, warnings included
    (so every method is stable under bootstrap), and the recommendation finds the real groups."""
    config = write_config(tmp_path, transactions={"source": "synthetic"})
    definitions = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    lines: list[str] = []
    outcome = run_graph(config, instance=instance, emit=lines.append)

    assert outcome.success, outcome.errors + outcome.failed_checks
    assert outcome.failed_checks == [] and outcome.warnings == [] and outcome.errors == []
    graph = definitions.resolve_asset_graph()
    all_assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert outcome.assets == len(all_assets) == 41  # 34 retail + persona_texts, 7 leads
    # Every asset check of the graph ran once and passed, blocking or not.
    evaluations = instance.get_records_for_run(outcome.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluated = {(r.event_log_entry.dagster_event.event_specific_data.asset_key.to_user_string(),
                  r.event_log_entry.dagster_event.event_specific_data.check_name): r.event_log_entry.dagster_event.event_specific_data.passed
                 for r in evaluations}
    expected = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert set(evaluated) == expected
    assert all(evaluated.values())
    assert outcome.checks_passed == len(expected)
    assert len(lines) == len(all_assets)  # one progress line per asset

    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and node.owners and node.kinds, key
        metadata = instance.get_latest_materialization_event(key).asset_materialization.metadata
        assert metadata["dagster/row_count"].value >= 0, key
        assert metadata["dagster/column_schema"].value.columns, key
        assert metadata["files"].value, key

    out = tmp_path / "outputs"
    published = OutputFolder(out).current()
    assert published.run_id == outcome.run_id
    manifest = published.manifest["assets"]
    assert set(manifest) == all_assets - {"published_outputs"}
    for name, entry in manifest.items():
        assert entry["run_id"] == outcome.run_id, name
        for file in entry["files"]:
            info = published.manifest["files"][file]
            assert info["asset"] == name and info["run_id"] == outcome.run_id
            assert file_sha256(out / file) == info["sha256"], (name, file)
    assert json.loads((out / "manifest.json").read_text()) == published.manifest
    assert not list((out / ".staging").iterdir())  # the run's staging was published, then removed

    features = pd.read_parquet(out / "tables" / "customer_features_basic.parquet")
    for method in METHODS:
        profile_json = json.loads((out / "profiles" / f"{method}_cluster_profile.json").read_text())
        assert yaml.safe_load((out / "profiles" / f"{method}_cluster_profile.yaml").read_text()) == profile_json
        assert profile_json["metadata"]["n_samples"] == len(features)
        prompt = (out / "profiles" / f"{method}_llm_prompt.md").read_text()
        assert all(name in prompt for name in profile_json["clusters"])
        personas = json.loads((out / "personas" / f"{method}_personas.json").read_text())
        assert len(personas["personas"]) == profile_json["metadata"]["n_clusters"]
        clustered = pd.read_csv(out / "tables" / f"{method}_clustered_customers.csv")
        assert len(clustered) == len(features) and clustered["persona_name"].notna().all()
        assert {"customer_id", "segment", "monetary", "cluster"} <= set(clustered.columns)
        # department spend and ground truth are read from their own tables, not repeated per method
        assert not [c for c in clustered.columns if c.startswith(("dept_value:", "dept_units:", "true_"))]
        bundle = ModelBundle.load(out / "models" / f"{method}_bundle.joblib")
        assignments = pd.read_parquet(out / "tables" / f"{method}_cluster_assignments.parquet")
        predicted = bundle.predict(features.set_index("customer_id").loc[assignments["customer_id"]].reset_index())
        assert (predicted.labels == assignments["cluster"].to_numpy()).all(), method
    summary = json.loads((out / "profiles" / "method_comparison.json").read_text())
    recommended = next(row for row in summary["methods"] if row["run"] == summary["recommended_run"])
    assert recommended["ari_vs_truth"] >= 0.80, summary["recommended_run"]
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert len(list((out / "charts").glob("*.png"))) >= 4 + 2 * len(METHODS)


def test_disabled_and_unsupported_methods_are_skipped_with_their_reason(tmp_path):
    """Only the enabled methods run; one the data cannot support is skipped, and the others go on."""
    config = write_config(
        tmp_path,
        transactions={"source": "synthetic", "synthetic": {"customers": 40, "months": 2, "seed": 5, "start_month": "2025-01"}},
        clustering={"methods": {"kmeans": {}, "hdbscan": {"min_cluster_size": 30}}, "bootstraps": 2, "k_max": 4},
    )
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_graph(config, instance=instance, emit=lambda line: None)
    assert outcome.success, outcome.errors + outcome.failed_checks

    out = tmp_path / "outputs"
    summary = json.loads((out / "profiles" / "method_comparison.json").read_text())
    assert summary["recommended"] == "kmeans"
    assert set(summary["skipped"]) == {"gmm", "fuzzy_cmeans", "autoencoder_kmeans", "hdbscan"}
    assert summary["skipped"]["gmm"].startswith("not enabled in clustering.methods")
    assert "hdbscan needs at least 60 customers" in summary["skipped"]["hdbscan"]
    metadata = instance.get_latest_materialization_event(dg.AssetKey("hdbscan")).asset_materialization.metadata
    assert "hdbscan needs at least 60 customers" in metadata["skipped"].value
    published = OutputFolder(out).current().manifest["files"]
    assert "models/kmeans_bundle.joblib" in published and "models/gmm_bundle.joblib" not in published
    assert "hdbscan needs at least 60 customers" in (out / "report.html").read_text()
