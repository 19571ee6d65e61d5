"""Seniority from a free-text job title, by keyword scoring.

Titles in CRM exports are free text ("Sr. Mgr, Demand Gen", "VP of Sales", "CFO"), so a lookup table
of exact titles misses most of them. Instead the title is split into words, abbreviations are spelled
out, and known phrases score for a level; the highest total wins, a tie goes to the more senior level
("Lead Engineer" is a lead, "Assistant Manager" a manager). Longer phrases are matched first and use up
their words, so "Vice President" is not also read as "President". A title with no known phrase is
Unknown rather than guessed.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

UNKNOWN = "Unknown"
# Ordered from the most junior: the position is the ordinal value used in clustering.
SENIORITY_LEVELS = ("Entry-Level", "Professional", "Management", "Senior Management", "C-Suite")

ABBREVIATIONS = {
    "sr": "senior",
    "snr": "senior",
    "jr": "junior",
    "jnr": "junior",
    "mgr": "manager",
    "mngr": "manager",
    "dir": "director",
    "asst": "assistant",
    "assoc": "associate",
    "exec": "executive",
    "eng": "engineer",
    "engr": "engineer",
    "dev": "developer",
    "coord": "coordinator",
    "spec": "specialist",
    "rep": "representative",
    "reps": "representative",
    "tech": "technician",
    "admin": "administrator",
    "pres": "president",
    "vp": "vice president",
    "svp": "senior vice president",
    "evp": "executive vice president",
    "avp": "assistant vice president",
    "gm": "general manager",
    "sdr": "sales development representative",
    "bdr": "business development representative",
}
C_LEVEL_ACRONYMS = ("ceo", "cfo", "cto", "coo", "cmo", "cio", "ciso", "cso", "cro", "cpo", "cco", "cdo", "chro", "cxo")

# phrase -> (level, score). Phrases are matched on whole words after abbreviations are expanded.
PHRASES: dict[str, tuple[str, int]] = {
    **{acronym: ("C-Suite", 10) for acronym in C_LEVEL_ACRONYMS},
    "chief": ("C-Suite", 10),
    "c level": ("C-Suite", 10),
    "president": ("C-Suite", 8),
    "founder": ("C-Suite", 8),
    "co founder": ("C-Suite", 8),
    "cofounder": ("C-Suite", 8),
    "owner": ("C-Suite", 8),
    "managing director": ("C-Suite", 8),
    "managing partner": ("C-Suite", 8),
    "entrepreneur": ("C-Suite", 5),
    "vice president": ("Senior Management", 9),
    "head": ("Senior Management", 6),
    "director": ("Senior Management", 6),
    "general manager": ("Senior Management", 6),
    "general counsel": ("Senior Management", 6),
    "partner": ("Senior Management", 5),
    "treasurer": ("Senior Management", 5),
    "comptroller": ("Senior Management", 5),
    "manager": ("Management", 4),
    "supervisor": ("Management", 4),
    "team lead": ("Management", 4),
    "team leader": ("Management", 4),
    "lead": ("Management", 3),
    "controller": ("Management", 4),
    "superintendent": ("Management", 4),
    "foreman": ("Management", 4),
    "management": ("Management", 2),
    "analyst": ("Professional", 3),
    "engineer": ("Professional", 3),
    "developer": ("Professional", 3),
    "programmer": ("Professional", 3),
    "consultant": ("Professional", 3),
    "specialist": ("Professional", 3),
    "accountant": ("Professional", 3),
    "auditor": ("Professional", 3),
    "architect": ("Professional", 3),
    "scientist": ("Professional", 3),
    "researcher": ("Professional", 3),
    "designer": ("Professional", 3),
    "attorney": ("Professional", 3),
    "lawyer": ("Professional", 3),
    "counsel": ("Professional", 3),
    "paralegal": ("Professional", 3),
    "nurse": ("Professional", 3),
    "physician": ("Professional", 3),
    "pharmacist": ("Professional", 3),
    "therapist": ("Professional", 3),
    "teacher": ("Professional", 3),
    "professor": ("Professional", 5),
    "lecturer": ("Professional", 3),
    "technician": ("Professional", 3),
    "administrator": ("Professional", 3),
    "officer": ("Professional", 2),
    "advisor": ("Professional", 3),
    "adviser": ("Professional", 3),
    "planner": ("Professional", 3),
    "recruiter": ("Professional", 3),
    "strategist": ("Professional", 3),
    "economist": ("Professional", 3),
    "editor": ("Professional", 3),
    "writer": ("Professional", 3),
    "buyer": ("Professional", 3),
    "underwriter": ("Professional", 3),
    "actuary": ("Professional", 3),
    "executive": ("Professional", 2),
    "agent": ("Professional", 2),
    "principal": ("Professional", 2),
    "senior": ("Professional", 1),
    "staff": ("Professional", 1),
    "intern": ("Entry-Level", 6),
    "internship": ("Entry-Level", 6),
    "trainee": ("Entry-Level", 6),
    "apprentice": ("Entry-Level", 6),
    "student": ("Entry-Level", 6),
    "graduate": ("Entry-Level", 5),
    "entry level": ("Entry-Level", 6),
    "junior": ("Entry-Level", 5),
    "assistant": ("Entry-Level", 4),
    "associate": ("Entry-Level", 3),
    "coordinator": ("Entry-Level", 3),
    "representative": ("Entry-Level", 3),
    "clerk": ("Entry-Level", 4),
    "receptionist": ("Entry-Level", 4),
    "cashier": ("Entry-Level", 4),
}
_PHRASE_WORDS = sorted(
    ((tuple(phrase.split()), level, score) for phrase, (level, score) in PHRASES.items()),
    key=lambda entry: -len(entry[0]),
)
_RANK = {level: rank for rank, level in enumerate(SENIORITY_LEVELS)}


def title_words(title: str) -> list[str]:
    """Lower-case words of a title with abbreviations spelled out ('Sr. VP' -> senior vice president)."""
    words = re.findall(r"[a-z0-9]+", str(title).lower().replace("&", " and "))
    return " ".join(ABBREVIATIONS.get(word, word) for word in words).split()


def seniority_of(title: str | None) -> str:
    """The seniority level of one job title, or Unknown when no known phrase occurs in it."""
    if title is None or (isinstance(title, float) and np.isnan(title)):
        return UNKNOWN
    words = title_words(title)
    used = [False] * len(words)
    scores: dict[str, int] = {}
    for phrase, level, score in _PHRASE_WORDS:
        size = len(phrase)
        for start in range(len(words) - size + 1):
            if tuple(words[start : start + size]) == phrase and not any(used[start : start + size]):
                used[start : start + size] = [True] * size
                scores[level] = scores.get(level, 0) + score
    if not scores:
        return UNKNOWN
    return max(scores, key=lambda level: (scores[level], _RANK[level]))


def seniority_column(titles: pd.Series) -> pd.Series:
    """Seniority of every title as an ordered categorical; each distinct title is classified once."""
    if isinstance(titles.dtype, pd.CategoricalDtype):
        codes, distinct = titles.cat.codes.to_numpy(), list(titles.cat.categories)
    else:
        codes, distinct = pd.factorize(titles, use_na_sentinel=True)
    # code -1 (a missing title) picks the appended Unknown
    levels = np.array([seniority_of(title) for title in distinct] + [UNKNOWN], dtype=object)
    dtype = pd.CategoricalDtype(list(SENIORITY_LEVELS) + [UNKNOWN])
    return pd.Series(pd.Categorical(levels[codes], dtype=dtype), index=titles.index, name="seniority")
