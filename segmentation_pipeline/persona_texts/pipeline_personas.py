"""The personas the project's own flows produced (retail, leads, ...) as persona texts, so the same
analysis can show which clustering methods describe alike personas.

A personas JSON dict has a `personas` list; each persona has `persona_name`, `description` and nested
fields (behaviour, value, geography, actions...). The text is the name, the description, then every
nested text value as "field: value" (numbers are left out: they carry no vocabulary to compare).
"""

from __future__ import annotations

from collections.abc import Mapping

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.persona_texts.corpus import (
    PersonaCorpus,
    combine_corpora,
    make_corpus,
)

SKIPPED_FIELDS = frozenset({"persona_name", "description", "cluster_id", "rank", "value_tier_thresholds"})


def _text_values(value, key: str = "") -> list[str]:
    """Text leaves of a nested value as "key: text", in the dict's own order."""
    if isinstance(value, str):
        return [f"{key.replace('_', ' ')}: {value}" if key else value] if value.strip() else []
    if isinstance(value, Mapping):
        return [line for k, v in value.items() if k not in SKIPPED_FIELDS for line in _text_values(v, str(k))]
    if isinstance(value, (list, tuple)):
        return [line for item in value for line in _text_values(item, key)]
    return []


def persona_text(persona: Mapping) -> str:
    """One persona dict as a paragraph: name, description, nested text fields."""
    parts = [str(persona.get("persona_name", "")).strip(), str(persona.get("description", "")).strip()]
    parts += _text_values(persona)
    return "\n".join(part.rstrip(".") + "." for part in parts if part)


def pipeline_persona_corpus(personas_by_flow: Mapping[str, Mapping]) -> PersonaCorpus:
    """A corpus of every persona of every flow; `personas_by_flow` maps a name such as "retail/kmeans"
    to that flow's personas JSON dict. Ids are "<flow>:<cluster_id or position>"."""
    corpora = []
    for flow, document in personas_by_flow.items():
        personas = document.get("personas") if isinstance(document, Mapping) else None
        if not isinstance(personas, list):
            raise InputDataError(f"pipeline personas '{flow}': expected a dict with a `personas` list")
        ids = [f"{flow}:{p.get('cluster_id', position)}" for position, p in enumerate(personas)]
        corpora.append(make_corpus(ids, [persona_text(p) for p in personas], f"pipeline:{flow}"))
    return combine_corpora(corpora) if corpora else make_corpus([], [], "pipeline")
