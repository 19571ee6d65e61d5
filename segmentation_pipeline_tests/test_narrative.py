"""The optional LLM narrative against a real HTTP server on 127.0.0.1: replies, failures, fallback."""

import json
import time
from http.server import BaseHTTPRequestHandler

import dagster as dg
import pytest

from segmentation_pipeline import layout
from segmentation_pipeline.narrative import NarrativeError, request_narrative
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline_tests.conftest import (
    local_http_server,
    materialize,
    send_json,
    write_config,
)

NARRATIVE = "Cluster 0 are loyal weekend shoppers; keep them with early access."


class _ChatHandler(BaseHTTPRequestHandler):
    """Behaves like a chat-completions endpoint; the path picks good, failing or malformed replies."""

    received: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatHandler.received.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path.startswith("/slow"):
            time.sleep(2)
        if self.path.startswith("/error"):
            self.send_response(500)
            self.end_headers()
            return
        reply = {"unexpected": True} if self.path.startswith("/malformed") else {
            "choices": [{"message": {"role": "assistant", "content": NARRATIVE}}]
        }
        send_json(self, reply)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def chat_server():
    with local_http_server(_ChatHandler) as url:
        yield url


def test_reply_is_returned_and_request_is_well_formed(chat_server):
    text = request_narrative("PROMPT", f"{chat_server}/good/v1", "local-model", "secret", 5)
    assert text == NARRATIVE
    request = _ChatHandler.received[-1]
    assert request["path"] == "/good/v1/chat/completions"
    assert request["auth"] == "Bearer secret"
    assert request["body"]["model"] == "local-model"
    assert request["body"]["messages"][-1] == {"role": "user", "content": "PROMPT"}


@pytest.mark.parametrize("path, timeout", [("/error/v1", 5), ("/malformed/v1", 5), ("/slow/v1", 0.5)])
def test_failures_raise_narrative_error(chat_server, path, timeout):
    with pytest.raises(NarrativeError):
        request_narrative("PROMPT", chat_server + path, "m", None, timeout)


def test_unreachable_endpoint_raises_narrative_error():
    with pytest.raises(NarrativeError, match="could not be reached"):
        request_narrative("PROMPT", "http://127.0.0.1:9/v1", "m", None, 1)


PERSONA_STAGE = [
    "raw_transactions", "ground_truth_customers", "cleaned_transactions", "rejected_transactions", "rfm",
    "customer_features_basic", "customer_features_enriched", "customer_class_spend", "kmeans", "kmeans_profile",
    "kmeans_personas",
]


def _run_with_llm(base_url: str, tmp_path, monkeypatch) -> tuple[dict, dict, str]:
    """The persona stage with the LLM enabled: (personas JSON, files of the published set, the
    profile's `llm_narrative_status`)."""
    llm = {"enabled": True, "base_url": base_url, "model": "m", "api_key_env": "TEST_LLM_KEY", "timeout_seconds": 1}
    config = write_config(tmp_path, llm=llm)
    monkeypatch.setenv("TEST_LLM_KEY", "k")
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(config, instance, PERSONA_STAGE)
    assert result.success
    published = OutputFolder(tmp_path / "outputs").current()
    assert published.manifest["files"]["personas/kmeans_personas.json"]["run_id"] == result.run_id
    # the stable path through `current` is the published file
    stable = tmp_path / "outputs" / "personas" / "kmeans_personas.json"
    assert stable.read_bytes() == published.file("personas/kmeans_personas.json").read_bytes()
    event = instance.get_latest_materialization_event(dg.AssetKey("kmeans_profile"))
    status = event.asset_materialization.metadata["llm_narrative_status"].value
    return json.loads(stable.read_text()), published, status


def test_pipeline_stores_the_llm_narrative_beside_the_deterministic_text(chat_server, tmp_path, monkeypatch):
    personas, published, status = _run_with_llm(f"{chat_server}/good/v1", tmp_path, monkeypatch)
    assert status == "ok"
    narrative = layout.llm_narrative("kmeans")
    assert published.manifest["files"][narrative]["asset"] == "kmeans_profile"
    assert (tmp_path / "outputs" / narrative).read_text() == NARRATIVE
    assert all(p["description"] for p in personas["personas"])
    prompt = _ChatHandler.received[-1]["body"]["messages"][-1]["content"]
    assert "cluster_0" in prompt
    assert prompt == (tmp_path / "outputs" / layout.llm_prompt("kmeans")).read_text()  # the published prompt is what was sent


def test_pipeline_falls_back_when_the_llm_fails(chat_server, tmp_path, monkeypatch):
    personas, published, status = _run_with_llm(f"{chat_server}/error/v1", tmp_path, monkeypatch)
    assert status.startswith("failed: ")
    assert layout.llm_narrative("kmeans") not in published.manifest["files"]
    assert all(p["description"] for p in personas["personas"])
