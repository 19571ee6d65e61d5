"""Every path the project writes under the output folder, in one place: renaming an output is one edit.

The output folder holds the *published set* and the machinery around it (see `publication`):

    <output_dir>/
      current -> sets/<set_id>      the published set (one atomic symlink swap publishes a run)
      manifest.json, report.html, tables, charts, ... -> current/...   stable paths for readers
      sets/<set_id>/                complete, immutable sets (the last few, for rollback)
      .staging/<run_id>/            what a run in progress has written (never read by users)
      cache/                        parse and generator caches (not part of any set)

The functions below give a file's path *inside a set* (the same path is valid under `<output_dir>`
through the stable links, and under `.staging/<run_id>/` while a run writes it).
"""

from __future__ import annotations

# --- the folder's machinery --------------------------------------------------------------------
MANIFEST = "manifest.json"
CURRENT = "current"
SETS = "sets"
STAGING = ".staging"
CACHE = "cache"
ENGINE_SPILL = "engine_spill"  # inside cache/: where the analytical engine spills what exceeds its memory
LEDGER = ".ledger"  # inside a run's staging: what each asset wrote
TEMP_SUFFIX = ".segtmp"  # every temporary file the project writes ends so, and only those are cleaned up
MACHINERY = frozenset({MANIFEST, CURRENT, SETS, STAGING, CACHE})


# --- retail ------------------------------------------------------------------------------------
def table(name: str) -> str:
    """A customer-level or comparison table (`rfm`, `customer_features_basic`, ...)."""
    return f"tables/{name}.parquet"


def month_table(name: str, month: str) -> str:
    """One month of a monthly transaction table (`raw_transactions`, ...)."""
    return f"tables/{name}/{month}.parquet"


def model_bundle(method: str) -> str:
    return f"models/{method}_bundle.joblib"


def cluster_assignments(method: str) -> str:
    return table(f"{method}_cluster_assignments")


def cluster_profile(method: str, suffix: str) -> str:
    """`suffix` is "json" or "yaml": the same profile in both formats."""
    return f"profiles/{method}_cluster_profile.{suffix}"


def llm_prompt(method: str) -> str:
    return f"profiles/{method}_llm_prompt.md"


def llm_narrative(method: str) -> str:
    """The LLM's answer to the prompt, when the optional narrative is enabled and the endpoint answered."""
    return f"profiles/{method}_llm_narrative.md"


METHOD_COMPARISON_JSON = "profiles/method_comparison.json"


def personas_json(method: str) -> str:
    return f"personas/{method}_personas.json"


def clustered_customers_csv(method: str) -> str:
    return f"tables/{method}_clustered_customers.csv"


def chart(prefix: str, name: str) -> str:
    """`charts/<prefix>_<name>.png`: prefix is a method, `pipeline`, or another domain's name."""
    return f"charts/{prefix}_{name}.png"


REPORT = "report.html"


# --- leads -------------------------------------------------------------------------------------
LEADS_DIR = "leads"


def leads_file(name: str) -> str:
    return f"{LEADS_DIR}/{name}"


LEADS_PERSONAS = leads_file("personas.json")  # personas ranked by conversion rate
LEADS_CLUSTERED = leads_file("clustered_leads.csv")  # the input rows, same order, + Cluster, Persona, conversion_score
LEADS_CONVERSION = leads_file("conversion.parquet")  # per cluster: counts, rate, Wilson interval, lift, tier
LEADS_REJECTED = leads_file("rejected_leads.csv")  # raw rows (every column) + source_row + reject_reason
LEADS_BUNDLE = leads_file("models/lead_segments_bundle.joblib")  # `ModelBundle.predict` on canonical lead fields
# What the REST service serves the lead model on: `lead_id` (the input row) + every encoded column.
LEAD_FEATURES = leads_file("lead_features.parquet")
LEADS_CHART_PREFIX = "leads"  # charts/leads_dashboard.png, charts/leads_pca.png (`chart(LEADS_CHART_PREFIX, name)`)
LEADS_CHARTS = ("dashboard", "pca")


# --- persona_texts -----------------------------------------------------------------------------
PERSONA_TEXTS_DIR = "persona_texts"


def persona_texts_file(name: str) -> str:
    return f"{PERSONA_TEXTS_DIR}/{name}"


PERSONA_TEXTS_CORPUS = persona_texts_file("corpus.csv")  # the parsed personas (rejected sections: summary.json)
PERSONA_TEXTS_CLUSTERS = persona_texts_file("clusters.csv")
PERSONA_TEXTS_DISSIMILARITY = persona_texts_file("dissimilarity_matrix.csv")
PERSONA_TEXTS_THEMES = persona_texts_file("themes.json")
PERSONA_TEXTS_REDUNDANT_PAIRS = persona_texts_file("redundant_pairs.csv")
PERSONA_TEXTS_MAP = persona_texts_file("clusters.html")
PERSONA_TEXTS_SUMMARY = persona_texts_file("summary.json")
PERSONA_TEXTS_INDEX = persona_texts_file("similarity_index.joblib")  # what `segmentation-pipeline similar` reads
# The analysis outputs by the name `persona_texts.analysis.write_outputs` gives them.
PERSONA_TEXTS_OUTPUTS = {
    "clusters": PERSONA_TEXTS_CLUSTERS,
    "dissimilarity": PERSONA_TEXTS_DISSIMILARITY,
    "themes": PERSONA_TEXTS_THEMES,
    "redundant_pairs": PERSONA_TEXTS_REDUNDANT_PAIRS,
    "html": PERSONA_TEXTS_MAP,
    "summary": PERSONA_TEXTS_SUMMARY,
    "index": PERSONA_TEXTS_INDEX,
}


# --- results passed between steps ----------------------------------------------------------------
def stored_object(asset: str) -> str:
    """A Python result (fitted clustering, profile, personas, chart bytes) kept for downstream steps
    and checks; part of the set, so a partial run reads the published one."""
    return f"objects/{asset}.joblib"
