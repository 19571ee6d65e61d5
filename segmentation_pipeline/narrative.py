"""Optional LLM narrative: send a profile prompt to an OpenAI-compatible chat-completions endpoint.

Uses the standard library's HTTP client: one POST, no SDK needed. Every failure becomes a
NarrativeError so the caller can fall back to the deterministic persona text.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

SYSTEM_MESSAGE = "You are a senior marketing analyst. Answer exactly in the format the user asks for."


class NarrativeError(RuntimeError):
    """The endpoint timed out, answered with an HTTP error, or sent something that is not a chat reply."""


def request_narrative(
    prompt: str,
    base_url: str,
    model: str,
    api_key: str | None,
    timeout_seconds: float,
    temperature: float = 0.2,
) -> str:
    """The assistant's reply text for `prompt`."""
    body = json.dumps(
        {
            "model": model,
            "temperature": temperature,
            "messages": [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": prompt}],
        }
    ).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = base_url.rstrip("/") + "/chat/completions"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise NarrativeError(f"{url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise NarrativeError(f"{url} could not be reached: {exc}") from exc
    try:
        content = json.loads(payload)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise NarrativeError(f"{url} sent a reply that is not a chat completion") from exc
    if not isinstance(content, str) or not content.strip():
        raise NarrativeError(f"{url} sent an empty reply")
    return content.strip()
