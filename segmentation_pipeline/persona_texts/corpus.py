"""The persona collection to analyse: parsed from a `=== PERSONA N ===` text file or a CSV, and combined
with other sources (the embedded corpus, the pipeline's own personas).

A corpus is a table of personas plus a table of rejected sections. Nothing is dropped silently: an
empty section is a rejected row with its line number and reason, and a duplicate text stays in the
corpus with `duplicate_of` naming the first persona that has the same text, so the user sees both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.readers import read_table

PERSONA_COLUMNS = ("persona_index", "persona_id", "text", "source", "family", "duplicate_of")
REJECTED_COLUMNS = ("persona_id", "source", "line", "reason")
EMPTY_SECTION = "empty_section"

HEADER = re.compile(r"^\s*===\s*PERSONA\s+(\d+)\s*===\s*$")
# Anything that starts like a header but is not exactly one (a typo, a missing number, a different
# number of '=') is a malformed file rather than persona text that happens to contain '==='.
HEADER_LIKE = re.compile(r"^\s*=+\s*PERSONA\b", re.IGNORECASE)


@dataclass(frozen=True)
class PersonaCorpus:
    """personas: one row per persona (PERSONA_COLUMNS); persona_index is its row number 0..n-1,
    family the known family (ground truth, embedded corpus only, else None), duplicate_of the id of
    the first persona with the same text (None for the first).
    rejected: sections that could not become a persona (REJECTED_COLUMNS), e.g. empty ones.
    sections: sections (or CSV rows) read, so that sections == len(personas) + len(rejected)."""

    personas: pd.DataFrame
    rejected: pd.DataFrame
    sections: int

    @property
    def texts(self) -> list[str]:
        return self.personas["text"].tolist()

    def duplicate_count(self) -> int:
        return int(self.personas["duplicate_of"].notna().sum())


def make_corpus(
    ids: Iterable[str],
    texts: Iterable[str],
    source: str,
    families: Iterable[str | None] | None = None,
    rejected: Iterable[dict] = (),
    sections: int | None = None,
) -> PersonaCorpus:
    """A corpus from parallel ids and texts (ids must be unique)."""
    ids, texts = [str(i) for i in ids], [str(t).strip() for t in texts]
    families = list(families) if families is not None else [None] * len(ids)
    personas = pd.DataFrame({"persona_id": ids, "text": texts, "source": source, "family": families})
    rejected_table = pd.DataFrame(list(rejected), columns=list(REJECTED_COLUMNS))
    return _finish(personas, rejected_table, len(ids) + len(rejected_table) if sections is None else sections)


def combine_corpora(corpora: Iterable[PersonaCorpus]) -> PersonaCorpus:
    """One corpus of all personas in order; ids must stay unique across the sources."""
    corpora = list(corpora)
    personas = pd.concat([c.personas for c in corpora], ignore_index=True)
    rejected = pd.concat([c.rejected for c in corpora], ignore_index=True)
    return _finish(personas.drop(columns=["persona_index", "duplicate_of"]), rejected, sum(c.sections for c in corpora))


def _finish(personas: pd.DataFrame, rejected: pd.DataFrame, sections: int) -> PersonaCorpus:
    repeated = personas["persona_id"][personas["persona_id"].duplicated()]
    if len(repeated):
        raise InputDataError(f"persona ids repeat: {sorted(set(repeated))[:5]} (every persona needs its own id)")
    key = personas["text"].map(lambda text: " ".join(text.lower().split()))
    first = personas["persona_id"].groupby(key, sort=False).transform("first")
    personas = personas.assign(
        persona_index=range(len(personas)),
        duplicate_of=_with_none([f if f != i else None for f, i in zip(first, personas["persona_id"])]),
        family=_with_none([f if isinstance(f, str) else None for f in personas["family"]]),
    )
    return PersonaCorpus(personas[list(PERSONA_COLUMNS)].reset_index(drop=True), rejected.reset_index(drop=True), sections)


def _with_none(values: list) -> pd.Series:
    """An object column that keeps None (a string column would turn it into NaN)."""
    return pd.Series(values, dtype=object)


def parse_persona_text(text: str, source: str) -> PersonaCorpus:
    """Personas from text in which every persona starts with a `=== PERSONA N ===` line.

    Raises InputDataError naming `source` and the line for: text before the first header, a line that
    looks like a header but is malformed, a repeated persona number, or no header at all."""
    ids: list[str] = []
    texts: list[str] = []
    rejected: list[dict] = []
    header_line: dict[str, int] = {}
    current: str | None = None
    body: list[str] = []

    def close() -> None:
        if current is None:
            return
        content = "\n".join(body).strip()
        if content:
            ids.append(current)
            texts.append(content)
        else:
            rejected.append({"persona_id": current, "source": source, "line": header_line[current], "reason": EMPTY_SECTION})

    for number, line in enumerate(text.splitlines(), start=1):
        header = HEADER.match(line)
        if header:
            close()
            current, body = header.group(1), []
            if current in header_line:
                raise InputDataError(
                    f"{source}: line {number}: PERSONA {current} repeats the header of line {header_line[current]}"
                )
            header_line[current] = number
        elif HEADER_LIKE.match(line):
            raise InputDataError(
                f"{source}: line {number}: malformed header {line.strip()!r} (expected '=== PERSONA <number> ===')"
            )
        elif current is None:
            if line.strip():
                raise InputDataError(
                    f"{source}: line {number}: text before the first '=== PERSONA <number> ===' header"
                )
        else:
            body.append(line)
    close()
    if not header_line:
        raise InputDataError(f"{source}: no '=== PERSONA <number> ===' header found")
    return make_corpus(ids, texts, source, rejected=rejected, sections=len(header_line))


def read_persona_file(path: str | Path) -> PersonaCorpus:
    """Personas from a UTF-8 text file with `=== PERSONA N ===` headers (see parse_persona_text)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputDataError(f"Persona file '{path}' cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputDataError(f"Persona file '{path}': line {line}: not valid UTF-8 (byte {raw[exc.start]:#04x})") from None
    return parse_persona_text(text, f"Persona file '{path}'")


def read_persona_csv(path: str | Path, id_column: str = "id", text_column: str = "text") -> PersonaCorpus:
    """Personas from a table with an id and a text column (any format read_table reads); a row with
    an empty text is rejected with its line number (header = line 1)."""
    path = Path(path)
    table = read_table(path, kind="Persona file")
    for column in (id_column, text_column):
        if column not in table.columns:
            raise InputDataError(
                f"Persona file '{path}': column {column!r} not found (columns: {', '.join(map(str, table.columns))})"
            )
    ids = table[id_column].fillna("").astype(str).str.strip()
    if (ids == "").any():
        line = int((ids == "").to_numpy().argmax()) + 2
        raise InputDataError(f"Persona file '{path}': column {id_column!r}: line {line}: empty id")
    texts = table[text_column].fillna("").astype(str).str.strip()
    empty = texts == ""
    rejected = [
        {"persona_id": ids[row], "source": str(path), "line": int(row) + 2, "reason": EMPTY_SECTION}
        for row in texts.index[empty]
    ]
    return make_corpus(ids[~empty], texts[~empty], str(path), rejected=rejected, sections=len(table))
