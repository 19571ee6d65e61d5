"""The embedded persona corpus: personas generated from the YAML templates shipped in this package,
with known ground truth (family, seniority, industry, expertise, priority, challenge, near duplicate).

Like the transaction generator, the same count and seed always give the same personas, so a fresh
clone can run the whole analysis and score it against the truth. Families are balanced (counts differ
by at most one) and shuffled; every other trait is drawn independently of the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.persona_texts.corpus import PersonaCorpus, make_corpus

TEMPLATES_PATH = Path(__file__).parent / "data" / "persona_templates.yml"
EMBEDDED_SOURCE = "embedded"
TRUTH_COLUMNS = (
    "persona_id", "family", "seniority", "industry", "expertise", "priorities", "challenges", "near_duplicate_of",
)

Phrases = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Seniority(_Strict):
    titles: Phrases
    sentences: Phrases


class Family(_Strict):
    expertise: str
    titles: Phrases
    specialisms: Phrases
    activities: Phrases
    tools: Phrases


class Templates(_Strict):
    openings: Phrases
    sentences: Phrases
    near_duplicate_opening: str
    near_duplicate_share: float = Field(ge=0.0, le=0.5)
    seniority: dict[str, Seniority]
    industries: dict[str, Phrases]
    priorities: dict[str, Phrases]
    challenges: dict[str, Phrases]
    families: Annotated[dict[str, Family], Field(min_length=2)]


def load_templates(path: str | Path | None = None) -> Templates:
    path = Path(path) if path is not None else TEMPLATES_PATH
    try:
        return Templates.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise InputDataError(f"{path}: cannot be read as YAML: {' '.join(str(exc).split())}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputDataError(f"{path}: {problems}") from None


@dataclass(frozen=True)
class GeneratedPersonas:
    corpus: PersonaCorpus  # family filled in
    truth: pd.DataFrame  # TRUTH_COLUMNS, one row per persona, in corpus order


def generate_personas(count: int = 180, seed: int = 42, templates: Templates | None = None) -> GeneratedPersonas:
    """`count` personas (at least one per family), the last `near_duplicate_share` of them re-telling
    an earlier persona with another opening."""
    templates = templates or load_templates()
    families = list(templates.families)
    if count < len(families):
        raise ValueError(f"need at least {len(families)} personas (one per family), got {count}")
    rng = np.random.default_rng(seed)
    duplicates = int(count * templates.near_duplicate_share)
    originals = count - duplicates
    family_of = rng.permutation(np.resize(np.arange(len(families)), originals))
    width = len(str(count))
    rows, texts = [], []
    for index in range(originals):
        draws = _draw(templates, families[family_of[index]], rng)
        rows.append({**draws["truth"], "persona_id": f"P{index + 1:0{width}d}", "near_duplicate_of": None})
        texts.append(_render(templates, draws, rng.choice(templates.openings)))
        rows[-1]["_draws"] = draws
    for index, original in enumerate(rng.choice(originals, size=duplicates, replace=False), start=originals):
        draws = rows[original]["_draws"]
        rows.append({**draws["truth"], "persona_id": f"P{index + 1:0{width}d}", "near_duplicate_of": rows[original]["persona_id"]})
        texts.append(_render(templates, draws, templates.near_duplicate_opening))
    truth = pd.DataFrame(rows)[list(TRUTH_COLUMNS)]
    corpus = make_corpus(truth["persona_id"], texts, EMBEDDED_SOURCE, families=truth["family"])
    return GeneratedPersonas(corpus, truth)


def _draw(templates: Templates, family_name: str, rng: np.random.Generator) -> dict:
    """Every random choice of one persona, so a near duplicate can re-use them."""
    family = templates.families[family_name]

    def pick(options, size=1):
        chosen = rng.choice(len(options), size=size, replace=False)
        return [options[i] for i in chosen]

    seniority = str(rng.choice(list(templates.seniority)))
    industry = str(rng.choice(list(templates.industries)))
    priority = str(rng.choice(list(templates.priorities)))
    challenge = str(rng.choice(list(templates.challenges)))
    seniority_title = pick(templates.seniority[seniority].titles)[0]
    specialisms, activities, tools = pick(family.specialisms, 2), pick(family.activities, 2), pick(family.tools, 2)
    values = {
        "seniority_title": ("an " if seniority_title[0] in "AEIOU" else "a ") + seniority_title,
        "title": pick(family.titles)[0],
        "industry": pick(templates.industries[industry])[0],
        "specialism": specialisms[0],
        "specialism2": specialisms[1],
        "activity": activities[0],
        "activity2": activities[1],
        "tool": tools[0],
        "tool2": tools[1],
        "seniority_sentence": pick(templates.seniority[seniority].sentences)[0],
        "priority": pick(templates.priorities[priority])[0],
        "challenge": pick(templates.challenges[challenge])[0],
    }
    truth = {
        "family": family_name,
        "seniority": seniority,
        "industry": industry,
        "expertise": family.expertise,
        "priorities": priority,
        "challenges": challenge,
    }
    return {"values": values, "truth": truth}


def _render(templates: Templates, draws: dict, opening: str) -> str:
    return " ".join(sentence.format(**draws["values"]) for sentence in [opening, *templates.sentences])


def persona_text_file(corpus: PersonaCorpus) -> str:
    """The corpus in the `=== PERSONA N ===` text format (numbered by persona_index + 1)."""
    return "".join(
        f"=== PERSONA {index + 1} ===\n{text}\n\n" for index, text in enumerate(corpus.personas["text"])
    )
