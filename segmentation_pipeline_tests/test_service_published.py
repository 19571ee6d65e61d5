"""Reading a published set: the manifest contract, sha256 verification, the bundle helpers it relies on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segmentation_pipeline import layout, publication
from segmentation_pipeline.clustering import ModelBundle
from segmentation_pipeline.service import published
from segmentation_pipeline.service.published import PublishedSetError
from segmentation_pipeline_tests.service_support import clustered, customer_features, publish_retail_set


@pytest.fixture(scope="module")
def published_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("published")
    return folder, publish_retail_set(folder, "run-p", methods=("kmeans", "hdbscan"), leads=True).path


def test_current_resolves_to_the_set_folder(published_set):
    output_dir, set_dir = published_set
    assert published.current_set(output_dir) == set_dir.resolve()


def test_nothing_published_names_the_missing_link(tmp_path):
    with pytest.raises(PublishedSetError, match="nothing published yet"):
        published.current_set(tmp_path)


def test_published_methods_per_family(published_set):
    _, set_dir = published_set
    manifest = published.read_manifest(set_dir)
    assert published.published_methods(published.RETAIL, manifest) == ["hdbscan", "kmeans"]  # manifest order
    assert published.published_methods(published.LEADS, manifest) == ["kmeans"]


def test_verified_bytes_returns_the_file_only_when_its_hash_matches(published_set, tmp_path):
    _, set_dir = published_set
    manifest = published.read_manifest(set_dir)
    relative = published.bundle_path(published.RETAIL, "kmeans")
    assert published.verified_bytes(set_dir, manifest, relative) == (set_dir / relative).read_bytes()
    altered = {**manifest, "files": {**manifest["files"], relative: {**manifest["files"][relative], "sha256": "0" * 64}}}
    with pytest.raises(PublishedSetError, match="does not match the manifest"):
        published.verified_bytes(set_dir, altered, relative)
    with pytest.raises(PublishedSetError, match="not listed in the manifest"):
        published.verified_bytes(set_dir, manifest, "models/unknown_bundle.joblib")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "unreadable manifest"),
        (json.dumps({"format": "something else"}), f"not a {publication.MANIFEST_FORMAT}"),
        (json.dumps({"format": publication.MANIFEST_FORMAT, "format_version": 99}), "format version 99"),
        (json.dumps({"format": publication.MANIFEST_FORMAT, "format_version": publication.MANIFEST_FORMAT_VERSION,
                     "files": {"a": {}}}), "sha256"),
        (json.dumps({"format": publication.MANIFEST_FORMAT, "format_version": publication.MANIFEST_FORMAT_VERSION,
                     "files": {}}), "`set_id`"),
    ],
)
def test_malformed_manifests_are_refused_with_the_reason(tmp_path, content, problem):
    (tmp_path / layout.MANIFEST).write_text(content)
    with pytest.raises(PublishedSetError, match=problem):
        published.read_manifest(tmp_path)


def test_bundle_from_bytes_equals_the_bundle_from_its_file(published_set):
    _, set_dir = published_set
    path = set_dir / published.bundle_path(published.RETAIL, "kmeans")
    bundle = ModelBundle.from_bytes(path.read_bytes(), path)
    table = customer_features()
    np.testing.assert_array_equal(bundle.predict(table).labels, ModelBundle.load(path).predict(table).labels)
    with pytest.raises(ValueError, match="named-source: not a readable model bundle"):
        ModelBundle.from_bytes(b"garbage", "named-source")


def test_transform_values_prepares_like_transform():
    bundle = clustered("kmeans").bundle
    table = customer_features()
    values = table[bundle.features].to_numpy(dtype=float)
    np.testing.assert_allclose(bundle.transform.transform_values(values), bundle.transform.transform(table))
    assert values[0, 1] == table[bundle.features[1]].iloc[0], "the caller's values stay raw"
