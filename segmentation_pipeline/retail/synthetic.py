"""Persona-driven synthetic transactions, so a fresh clone runs end to end with known ground truth.

Customers are drawn from the personas of `data/config/personas.yml` (in exact proportions), buy products
of `data/config/product_hierarchy.yml`, return some of them later, and the log carries the dirt of a
real export (guest orders without a customer id, zero prices, duplicated lines) so cleaning is exercised.
Everything is drawn from one seeded numpy Generator in whole-array steps: no Python loop runs per
customer or per line, which keeps ten million lines within seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.storage import PartitionedParquetWriter
from segmentation_pipeline.yaml_data import read_yaml_model

DEFAULT_PERSONAS_PATH = Path(__file__).parent / "personas.yml"
DEFAULT_HIERARCHY_PATH = Path(__file__).parent / "product_hierarchy.yml"

TRANSACTION_COLUMNS = (
    "invoice_id",
    "customer_id",
    "timestamp",
    "product_id",
    "description",
    "department",
    "product_class",
    "quantity",
    "unit_price",
    "country",
)

# Dirt of a real export: guests are a share of orders, the others a share of lines.
GUEST_ORDER_SHARE = 0.02
ZERO_PRICE_SHARE = 0.006
DUPLICATE_LINE_SHARE = 0.006

# Buying behaviour every persona shares.
FAVOURITE_DEPARTMENT_SHARE = 0.3  # lines bought in the customer's own favourite department
FAVOURED_CLASS_BOOST = 8.0  # a favoured class weighs 1 + this, any other class 1
PRICE_TIER_SPREAD = 0.22  # how tightly a persona keeps to its price tier (share of the variant range)
ORDER_VALUE_SIGMA = 0.3  # order-to-order spread (log scale) of basket value around the customer's own
QUANTITY_SIGMA = 0.35  # line-to-line spread (log scale) of quantities
FULL_RETURN_SHARE = 0.8  # returned lines that send back every unit bought
DAYS_PER_MONTH = 365.25 / 12
WEEKDAY_WEIGHTS = np.array([1.0, 1.05, 1.05, 1.1, 1.0, 0.9, 0.9])  # Monday first
FIRST_HOUR = 7  # orders come in from 07:00 to 21:59, busiest at lunch and in the evening
HOUR_WEIGHTS = np.array([0.3, 0.6, 0.9, 1.0, 1.1, 1.3, 1.3, 1.1, 1.0, 1.0, 1.1, 1.3, 1.4, 1.1, 0.6])
FIRST_INVOICE_NUMBER = 500001
BLOCK_CUSTOMERS = 200_000  # customers generated at a time by `write_generated` (~4M lines, ~2 GB)
CREDIT_NOTE_PREFIX = "C"  # as in the Online Retail export

RfmSegment = Literal[
    "champions",
    "loyal_customers",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
]

_NS_PER_SECOND = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_SECOND


# ----------------------------------------------------------------------------------------------------
# YAML schemas: shapes and types here, cross-references in the load_* functions


def _ordered(pair: tuple) -> tuple:
    if pair[0] > pair[1]:
        raise ValueError(f"lower bound {pair[0]} exceeds upper bound {pair[1]}")
    return pair


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveRange = Annotated[tuple[PositiveFloat, PositiveFloat], AfterValidator(_ordered)]
FractionRange = Annotated[tuple[Fraction, Fraction], AfterValidator(_ordered)]
CountRange = Annotated[tuple[PositiveInt, PositiveInt], AfterValidator(_ordered)]
WholeRange = Annotated[tuple[NonNegativeInt, NonNegativeInt], AfterValidator(_ordered)]
Month = Annotated[int, Field(ge=1, le=12)]
Names = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Strict):
    classes: Annotated[dict[str, PositiveRange], Field(min_length=1)]  # class -> [lowest, highest] price


class ProductHierarchy(_Strict):
    products_per_class: PositiveInt
    product_variants: Names  # from the cheapest to the most premium
    departments: Annotated[dict[str, Department], Field(min_length=1)]


class Demographics(_Strict):
    age: WholeRange
    gender: str | dict[str, NonNegativeFloat]
    has_children: bool | Fraction
    lifestyle: str | Names


class Spending(_Strict):
    order_value: PositiveRange
    orders_per_month: PositiveRange
    lines_per_order: CountRange
    max_units_per_line: PositiveInt
    price_tier: Fraction
    typical_rfm_segment: RfmSegment


class Lifecycle(_Strict):
    active_from: FractionRange
    active_until: FractionRange
    prior_tenure_days: WholeRange
    seasonality: dict[Month, PositiveFloat] = {}


class Returns(_Strict):
    rate: FractionRange
    delay_days: CountRange


class Persona(_Strict):
    weight: PositiveFloat
    description: Annotated[str, Field(min_length=1)]
    demographics: Demographics
    countries: dict[str, NonNegativeFloat]
    departments: dict[str, NonNegativeFloat]
    favoured_classes: list[str] = []
    spending: Spending
    lifecycle: Lifecycle
    returns: Returns


class People(_Strict):
    email_domains: Names
    first_names: Annotated[dict[str, Names], Field(min_length=1)]  # per gender
    last_names: Names
    cities: Annotated[dict[str, Names], Field(min_length=1)]  # per country


class PersonaSet(_Strict):
    people: People
    personas: Annotated[dict[str, Persona], Field(min_length=1)]


def _require(condition: bool, path: Path, key: str, problem: str) -> None:
    if not condition:
        raise InputDataError(f"{path}: {key}: {problem}")


def _require_distribution(weights: dict[str, float], path: Path, key: str) -> None:
    _require(bool(weights), path, key, "is empty")
    total = sum(weights.values())
    _require(abs(total - 1.0) <= 1e-6, path, key, f"weights sum to {total:g}, expected 1")


def load_hierarchy(path: str | Path | None = None) -> ProductHierarchy:
    """Read and validate the product hierarchy (default: data/config/product_hierarchy.yml)."""
    path = Path(path) if path is not None else DEFAULT_HIERARCHY_PATH
    hierarchy = read_yaml_model(path, ProductHierarchy)
    variants = hierarchy.product_variants
    _require(
        len(variants) >= hierarchy.products_per_class,
        path,
        "product_variants",
        f"{len(variants)} variants cannot name {hierarchy.products_per_class} products per class",
    )
    _require(len(set(variants)) == len(variants), path, "product_variants", "names repeat")
    department_of_class: dict[str, str] = {}
    for department, content in hierarchy.departments.items():
        for product_class in content.classes:
            _require(
                product_class not in department_of_class,
                path,
                f"departments.{department}.classes.{product_class}",
                f"class name already used in department {department_of_class.get(product_class)!r}",
            )
            department_of_class[product_class] = department
    return hierarchy


def load_personas(path: str | Path | None = None, hierarchy: ProductHierarchy | None = None) -> PersonaSet:
    """Read and validate the personas (default: data/config/personas.yml) against the product hierarchy."""
    path = Path(path) if path is not None else DEFAULT_PERSONAS_PATH
    hierarchy = hierarchy if hierarchy is not None else load_hierarchy()
    persona_set = read_yaml_model(path, PersonaSet)
    _require_distribution({name: p.weight for name, p in persona_set.personas.items()}, path, "personas.*.weight")
    department_of_class = {
        product_class: department
        for department, content in hierarchy.departments.items()
        for product_class in content.classes
    }
    for name, persona in persona_set.personas.items():
        _check_persona(persona, f"personas.{name}", persona_set.people, department_of_class, path)
    return persona_set


def _check_persona(
    persona: Persona, key: str, people: People, department_of_class: dict[str, str], path: Path
) -> None:
    genders = _as_distribution(persona.demographics.gender)
    _require_distribution(genders, path, f"{key}.demographics.gender")
    for gender in genders:
        _require(
            gender in people.first_names,
            path,
            f"{key}.demographics.gender",
            f"no first names for {gender!r} in people.first_names",
        )
    _require_distribution(persona.countries, path, f"{key}.countries")
    for country in persona.countries:
        _require(country in people.cities, path, f"{key}.countries", f"no cities for {country!r} in people.cities")
    _require_distribution(persona.departments, path, f"{key}.departments")
    known_departments = set(department_of_class.values())
    for department in persona.departments:
        _require(department in known_departments, path, f"{key}.departments", f"unknown department {department!r}")
    for product_class in persona.favoured_classes:
        department = department_of_class.get(product_class)
        _require(department is not None, path, f"{key}.favoured_classes", f"unknown product class {product_class!r}")
        _require(
            persona.departments.get(department, 0.0) > 0,
            path,
            f"{key}.favoured_classes",
            f"class {product_class!r} is in department {department!r}, which the persona never buys from",
        )
    _require(
        persona.lifecycle.active_until[1] > persona.lifecycle.active_from[0],
        path,
        f"{key}.lifecycle.active_until",
        "ends before active_from can start",
    )


def _as_distribution(value: str | list[str] | dict[str, float]) -> dict[str, float]:
    """One value, a list of equally likely values or a distribution, as a distribution."""
    if isinstance(value, str):
        return {value: 1.0}
    if isinstance(value, list):
        return {item: 1.0 / len(value) for item in value}
    return dict(value)


# ----------------------------------------------------------------------------------------------------
# The catalogue and the personas as arrays


@dataclass(frozen=True)
class _Catalogue:
    """Every product of the hierarchy; product p is variant p % n of class p // n."""

    department_names: np.ndarray
    class_names: np.ndarray
    department_of_class: np.ndarray  # non-decreasing: a department's classes are consecutive
    product_ids: np.ndarray
    descriptions: np.ndarray
    prices: np.ndarray
    products_per_class: int

    @property
    def class_of_product(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.class_names)), self.products_per_class)

    @property
    def department_of_product(self) -> np.ndarray:
        return self.department_of_class[self.class_of_product]

    @property
    def first_product_of_department(self) -> np.ndarray:
        return np.searchsorted(self.department_of_product, np.arange(len(self.department_names)))


def _variant_positions(products_per_class: int) -> np.ndarray:
    """Where each variant of a class sits between its cheapest (0) and most premium (1) end."""
    return np.linspace(0.0, 1.0, products_per_class) if products_per_class > 1 else np.array([0.5])


def _catalogue(hierarchy: ProductHierarchy) -> _Catalogue:
    """Products named `<variant> <class>`, priced evenly in log-space across the class's price range.

    Ids are `P<department><class><variant>` numbers, stable as long as the hierarchy keeps its order.
    """
    n = hierarchy.products_per_class
    classes = [
        (d, c, name, price_range)
        for d, content in enumerate(hierarchy.departments.values())
        for c, (name, price_range) in enumerate(content.classes.items())
    ]
    position = _variant_positions(n)
    variant_names = np.array(hierarchy.product_variants, dtype=object)
    variants = variant_names[np.rint(position * (len(variant_names) - 1)).astype(int)]
    width = max(2, len(str(max(len(hierarchy.departments), n, *(c + 1 for _, c, _, _ in classes)))))
    low = np.array([price_range[0] for *_, price_range in classes])[:, None]
    high = np.array([price_range[1] for *_, price_range in classes])[:, None]
    raw = low * (high / low) ** position
    shelf = np.where(raw >= 5, np.floor(raw) - 0.01, raw)  # 12.99 rather than 13.27 on dearer items
    return _Catalogue(
        department_names=np.array(list(hierarchy.departments), dtype=object),
        class_names=np.array([name for _, _, name, _ in classes], dtype=object),
        department_of_class=np.array([d for d, _, _, _ in classes]),
        product_ids=np.array(
            [f"P{d + 1:0{width}d}{c + 1:0{width}d}{k + 1:0{width}d}" for d, c, _, _ in classes for k in range(n)],
            dtype=object,
        ),
        descriptions=np.array(
            [f"{variant} {name}" for _, _, name, _ in classes for variant in variants], dtype=object
        ),
        prices=np.round(np.clip(shelf, low, high), 2).ravel(),
        products_per_class=n,
    )


def product_catalogue(hierarchy_path: str | Path | None = None) -> pd.DataFrame:
    """Every product the generator sells: product_id, description, department, product_class, unit_price."""
    catalogue = _catalogue(load_hierarchy(hierarchy_path))
    return pd.DataFrame(
        {
            "product_id": _text_column(np.arange(len(catalogue.prices)), catalogue.product_ids),
            "description": _text_column(np.arange(len(catalogue.prices)), catalogue.descriptions),
            "department": _text_column(catalogue.department_of_product, catalogue.department_names),
            "product_class": _text_column(catalogue.class_of_product, catalogue.class_names),
            "unit_price": catalogue.prices,
        }
    )


@dataclass(frozen=True)
class _PersonaTables:
    """Persona parameters as arrays indexed by persona number, ready for whole-array draws."""

    names: np.ndarray
    weights: np.ndarray
    segments: np.ndarray
    genders: np.ndarray
    gender_prob: np.ndarray  # persona x gender
    children_prob: np.ndarray
    lifestyles: np.ndarray
    lifestyle_prob: np.ndarray  # persona x lifestyle
    countries: np.ndarray
    country_prob: np.ndarray  # persona x country
    cities: np.ndarray
    city_prob: np.ndarray  # country x city
    first_names: np.ndarray
    first_name_prob: np.ndarray  # gender x first name
    last_names: np.ndarray
    email_domains: np.ndarray
    department_prob: np.ndarray  # persona x department
    product_prob: np.ndarray  # row p*D+d: persona p's choice among the products of department d, in order
    season: np.ndarray  # persona x calendar month, mean 1 over the year
    max_units: np.ndarray
    ranges: dict[str, tuple[np.ndarray, np.ndarray]]  # per-customer ranges: (lows, highs) per persona


def _persona_tables(persona_set: PersonaSet, catalogue: _Catalogue) -> _PersonaTables:
    personas = list(persona_set.personas.values())
    people = persona_set.people
    genders = [_as_distribution(p.demographics.gender) for p in personas]
    gender_names = _vocabulary(genders)
    lifestyles = [_as_distribution(p.demographics.lifestyle) for p in personas]
    country_names = list(people.cities)
    first_names = [people.first_names[gender] for gender in gender_names]
    return _PersonaTables(
        names=np.array(list(persona_set.personas), dtype=object),
        weights=np.array([p.weight for p in personas]),
        segments=np.array([p.spending.typical_rfm_segment for p in personas], dtype=object),
        genders=np.array(gender_names, dtype=object),
        gender_prob=_matrix(genders, gender_names),
        children_prob=np.array([float(p.demographics.has_children) for p in personas]),
        lifestyles=np.array(_vocabulary(lifestyles), dtype=object),
        lifestyle_prob=_matrix(lifestyles, _vocabulary(lifestyles)),
        countries=np.array(country_names, dtype=object),
        country_prob=_matrix([p.countries for p in personas], country_names),
        cities=np.array([city for country in country_names for city in people.cities[country]], dtype=object),
        city_prob=_block_uniform([len(people.cities[country]) for country in country_names]),
        first_names=np.array([name for names in first_names for name in names], dtype=object),
        first_name_prob=_block_uniform([len(names) for names in first_names]),
        last_names=np.array(people.last_names, dtype=object),
        email_domains=np.array(people.email_domains, dtype=object),
        department_prob=_matrix([p.departments for p in personas], list(catalogue.department_names)),
        product_prob=np.vstack([_product_rows(p, catalogue) for p in personas]),
        season=np.vstack([_season_row(p.lifecycle.seasonality) for p in personas]),
        max_units=np.array([p.spending.max_units_per_line for p in personas]),
        ranges={
            "age": _bounds([p.demographics.age for p in personas]),
            "order_value": _bounds([p.spending.order_value for p in personas]),
            "orders_per_month": _bounds([p.spending.orders_per_month for p in personas]),
            "lines_per_order": _bounds([p.spending.lines_per_order for p in personas]),
            "active_from": _bounds([p.lifecycle.active_from for p in personas]),
            "active_until": _bounds([p.lifecycle.active_until for p in personas]),
            "prior_tenure_days": _bounds([p.lifecycle.prior_tenure_days for p in personas]),
            "return_rate": _bounds([p.returns.rate for p in personas]),
            "return_delay_days": _bounds([p.returns.delay_days for p in personas]),
        },
    )


def _vocabulary(mappings: list[dict[str, float]]) -> list[str]:
    return list(dict.fromkeys(value for mapping in mappings for value in mapping))


def _matrix(rows: list[dict[str, float]], vocabulary: list[str]) -> np.ndarray:
    """Distributions given as {value: weight} mappings, as a (rows x vocabulary) probability matrix."""
    column = {value: i for i, value in enumerate(vocabulary)}
    matrix = np.zeros((len(rows), len(vocabulary)))
    for r, row in enumerate(rows):
        for value, weight in row.items():
            matrix[r, column[value]] = weight
    return matrix / matrix.sum(axis=1, keepdims=True)


def _block_uniform(sizes: list[int]) -> np.ndarray:
    """Row i uniform over its own block of `sizes[i]` consecutive columns (the cities of a country, ...)."""
    owner = np.repeat(np.arange(len(sizes)), sizes)
    matrix = np.zeros((len(sizes), len(owner)))
    matrix[owner, np.arange(len(owner))] = 1.0 / np.asarray(sizes)[owner]
    return matrix


def _bounds(pairs: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    array = np.array(pairs)
    return array[:, 0], array[:, 1]


def _product_rows(persona: Persona, catalogue: _Catalogue) -> np.ndarray:
    """How one persona picks a product within each department (departments x largest product count).

    A class weighs more when favoured and less when far dearer than the persona's typical line budget
    (a bargain hunter rarely lands on a sofa, so basket values stay near its order_value range); within
    a class, the variants near the persona's price tier win.
    """
    spending = persona.spending
    tier = _tier_row(spending.price_tier, catalogue.products_per_class)
    line_budget = np.sqrt(np.prod(spending.order_value)) / np.mean(spending.lines_per_order)
    price_at_tier = catalogue.prices.reshape(-1, catalogue.products_per_class) @ tier
    affordability = np.minimum(1.0, line_budget / price_at_tier)
    favoured = np.isin(catalogue.class_names, persona.favoured_classes)
    product_weight = np.outer((1.0 + FAVOURED_CLASS_BOOST * favoured) * affordability, tier).ravel()
    department = catalogue.department_of_product
    rows = np.zeros((len(catalogue.department_names), np.bincount(department).max()))
    rows[department, np.arange(len(department)) - catalogue.first_product_of_department[department]] = product_weight
    return rows / rows.sum(axis=1, keepdims=True)


def _tier_row(price_tier: float, products_per_class: int) -> np.ndarray:
    """Preference over a class's variants (cheap to premium), peaked at the persona's price tier."""
    weights = np.exp(-0.5 * ((_variant_positions(products_per_class) - price_tier) / PRICE_TIER_SPREAD) ** 2)
    return weights / weights.sum()


def _season_row(seasonality: dict[int, float]) -> np.ndarray:
    row = np.array([seasonality.get(month, 1.0) for month in range(1, 13)])
    return row / row.mean()


# ----------------------------------------------------------------------------------------------------
# Whole-array sampling


def _alias_tables(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias tables, one per row of `prob`: pick column j uniformly, keep it with chance
    keep[r, j], else take alias[r, j]. Built per table (config-sized); every draw is then O(1)."""
    n_rows, n_columns = prob.shape
    scaled = prob / prob.sum(axis=1, keepdims=True) * n_columns
    keep = np.ones_like(scaled)
    alias = np.tile(np.arange(n_columns), (n_rows, 1))
    for r in range(n_rows):
        mass = scaled[r].copy()
        small = [j for j in range(n_columns) if mass[j] < 1.0]
        large = [j for j in range(n_columns) if mass[j] >= 1.0]
        while small and large:
            light, heavy = small.pop(), large[-1]
            keep[r, light], alias[r, light] = mass[light], heavy
            mass[heavy] -= 1.0 - mass[light]
            if mass[heavy] < 1.0:
                small.append(large.pop())
    return keep, alias


def _draw(prob: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One column per element, drawn from the distribution in row `rows[i]` of `prob`."""
    keep, alias = _alias_tables(prob)
    n_columns = prob.shape[1]
    scaled = rng.random(len(rows)) * n_columns  # integer part picks the column, fraction decides keep/alias
    column = scaled.astype(np.int64)
    cell = rows * n_columns + column
    return np.where(scaled - column < keep.ravel()[cell], column, alias.ravel()[cell])


def _locate(cdf: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each value, the k with cdf[row, k] <= value < cdf[row, k+1] (clipped to the row's bins).

    `cdf` has one row per distribution, each rising from 0 to 1 over K+1 columns. Shifting row r by r
    lays all rows out as one sorted array, so a single searchsorted serves every row at once.
    """
    n_rows, n_edges = cdf.shape
    n_bins = n_edges - 1
    stacked = (cdf[:, 1:] + np.arange(n_rows)[:, None]).ravel()
    found = np.searchsorted(stacked, rows + values, side="right") - rows * n_bins
    return np.clip(found, 0, n_bins - 1)


def _uniform(bounds: tuple[np.ndarray, np.ndarray], rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, high = bounds
    return low[rows] + rng.random(len(rows)) * (high[rows] - low[rows])


def _log_uniform(bounds: tuple[np.ndarray, np.ndarray], rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, high = bounds
    return np.exp(_uniform((np.log(low), np.log(high)), rows, rng))


def _integers(bounds: tuple[np.ndarray, np.ndarray], rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, high = bounds
    return rng.integers(low[rows].astype(np.int64), high[rows].astype(np.int64) + 1)


def _assign_personas(weights: np.ndarray, customers: int, rng: np.random.Generator) -> np.ndarray:
    """Exact persona counts by largest remainder, in shuffled order: shares match weights to 1/customers."""
    quotas = weights / weights.sum() * customers
    counts = np.floor(quotas).astype(np.int64)
    counts[np.argsort(counts - quotas, kind="stable")[: customers - counts.sum()]] += 1
    persona = np.repeat(np.arange(len(weights)), counts)
    rng.shuffle(persona)
    return persona


# ----------------------------------------------------------------------------------------------------
# The generator


@dataclass(frozen=True)
class SyntheticData:
    transactions: pd.DataFrame  # line-level log with canonical column names, dirt included
    customers: pd.DataFrame  # ground truth per customer: persona and profile; never a clustering feature


@dataclass(frozen=True)
class Numbering:
    """Where a generated log's customer and invoice numbers start. The blocks of a log generated in
    blocks (`write_generated`) number on from each other, so ids stay unique across the whole log."""

    first_customer: int = 0
    total_customers: int | None = None  # sets the width of the ids (default: this block's customers)
    first_invoice: int = FIRST_INVOICE_NUMBER


@dataclass(frozen=True)
class _Window:
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def start_ns(self) -> int:
        return self.start.as_unit("ns").value

    @property
    def end_ns(self) -> int:
        return self.end.as_unit("ns").value


def generate(
    customers: int,
    months: int,
    seed: int,
    start_month: str = "2025-01",
    personas_path: str | Path | None = None,
    hierarchy_path: str | Path | None = None,
    *,
    dirty: bool = True,
    categorical: bool = False,
    numbering: Numbering = Numbering(),
) -> SyntheticData:
    """Transactions and ground-truth customers for `customers` customers over `months` months.

    The same arguments always give identical frames. `dirty=False` leaves out guest orders, zero prices
    and duplicated lines. `categorical=True` returns the repetitive text columns (all but invoice_id)
    as pandas categoricals, a third of the memory at ten million lines; otherwise they are `str`.
    """
    if customers < 1 or months < 1:
        raise ValueError(f"customers and months must be at least 1, got {customers} and {months}")
    window = _window(start_month, months)
    hierarchy = load_hierarchy(hierarchy_path)
    catalogue = _catalogue(hierarchy)
    tables = _persona_tables(load_personas(personas_path, hierarchy), catalogue)
    rng = np.random.default_rng(seed)

    people = _draw_customers(tables, customers, window, rng)
    orders = _draw_orders(tables, people, window, rng)
    lines = _draw_lines(tables, catalogue, people, orders, rng)
    returns = _draw_returns(tables, people, orders, lines, window, rng)
    log = _assemble(orders, lines, returns, dirty, rng)
    return SyntheticData(
        _transactions_frame(log, people, tables, catalogue, categorical, numbering),
        _customers_frame(people, tables, window, numbering),
    )


def _window(start_month: str, months: int) -> _Window:
    match = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", start_month)
    if match is None:
        raise ValueError(f"start_month must look like 2025-01, got {start_month!r}")
    start = pd.Timestamp(int(match[1]), int(match[2]), 1)
    return _Window(start, start + pd.DateOffset(months=months))


def _draw_customers(tables: _PersonaTables, customers: int, window: _Window, rng: np.random.Generator) -> dict:
    """Per customer: persona, profile, active period (window days) and personal buying habits."""
    persona = _assign_personas(tables.weights, customers, rng)
    gender = _draw(tables.gender_prob, persona, rng)
    country = _draw(tables.country_prob, persona, rng)
    active_from = np.floor(_uniform(tables.ranges["active_from"], persona, rng) * window.days).astype(np.int64)
    active_from = np.minimum(active_from, window.days - 1)
    active_until = np.ceil(_uniform(tables.ranges["active_until"], persona, rng) * window.days).astype(np.int64)
    return {
        "persona": persona,
        "age": _integers(tables.ranges["age"], persona, rng),
        "gender": gender,
        "has_children": rng.random(customers) < tables.children_prob[persona],
        "lifestyle": _draw(tables.lifestyle_prob, persona, rng),
        "country": country,
        "city": _draw(tables.city_prob, country, rng),
        "first_name": _draw(tables.first_name_prob, gender, rng),
        "last_name": rng.integers(0, len(tables.last_names), customers),
        "email_domain": rng.integers(0, len(tables.email_domains), customers),
        "active_from": active_from,  # first day of buying
        "active_until": np.clip(active_until, active_from + 1, window.days),  # one past the last day
        "prior_tenure_days": _integers(tables.ranges["prior_tenure_days"], persona, rng),
        "orders_per_month": _log_uniform(tables.ranges["orders_per_month"], persona, rng),
        "order_value": _log_uniform(tables.ranges["order_value"], persona, rng),
        "return_rate": _uniform(tables.ranges["return_rate"], persona, rng),
        "favourite_department": _draw(tables.department_prob, persona, rng),
    }


def _daily_intensity(tables: _PersonaTables, window: _Window) -> np.ndarray:
    """Relative purchase rate of each persona on each window day (mean 1 over a plain year)."""
    days = pd.date_range(window.start, periods=window.days, freq="D")
    weekday = WEEKDAY_WEIGHTS / WEEKDAY_WEIGHTS.mean()
    return tables.season[:, days.month.to_numpy() - 1] * weekday[days.day_of_week.to_numpy()]


def _draw_orders(tables: _PersonaTables, people: dict, window: _Window, rng: np.random.Generator) -> dict:
    """Orders as Poisson counts over each customer's active days, placed by seasonal daily intensity,
    in chronological order (so their lines come out nearly in log order too)."""
    persona = people["persona"]
    intensity = _daily_intensity(tables, window)
    cumulative = np.hstack([np.zeros((len(intensity), 1)), np.cumsum(intensity, axis=1)])
    total = cumulative[:, -1]
    begin = cumulative[persona, people["active_from"]] / total[persona]
    finish = cumulative[persona, people["active_until"]] / total[persona]
    expected = people["orders_per_month"] * (finish - begin) * total[persona] / DAYS_PER_MONTH
    count = np.maximum(rng.poisson(expected), 1)  # every customer buys at least once

    customer = np.repeat(np.arange(len(persona)), count)
    share = begin[customer] + rng.random(len(customer)) * (finish - begin)[customer]
    day = _locate(cumulative / total[:, None], persona[customer], share)
    day = np.clip(day, people["active_from"][customer], people["active_until"][customer] - 1)
    timestamp_ns = window.start_ns + day * _NS_PER_DAY + _seconds_of_day(len(day), rng) * _NS_PER_SECOND
    chronological = np.argsort(timestamp_ns, kind="stable")
    customer, day, timestamp_ns = customer[chronological], day[chronological], timestamp_ns[chronological]
    return {
        "customer": customer,
        "persona": persona[customer],
        "day": day,
        "timestamp_ns": timestamp_ns,
        "value": people["order_value"][customer] * rng.lognormal(0.0, ORDER_VALUE_SIGMA, len(customer)),
        "lines": _integers(tables.ranges["lines_per_order"], persona[customer], rng),
    }


def _seconds_of_day(n: int, rng: np.random.Generator) -> np.ndarray:
    hour = FIRST_HOUR + _draw(HOUR_WEIGHTS[None, :], np.zeros(n, dtype=np.int64), rng)
    return hour * 3600 + rng.integers(0, 3600, n)


def _draw_lines(
    tables: _PersonaTables, catalogue: _Catalogue, people: dict, orders: dict, rng: np.random.Generator
) -> dict:
    """Order lines: a department of the persona (or the customer's favourite one), then a product in it,
    in a quantity that brings the basket near the order's value."""
    order = np.repeat(np.arange(len(orders["customer"])), orders["lines"])
    persona = orders["persona"][order]
    department = people["favourite_department"][orders["customer"][order]]
    elsewhere = np.flatnonzero(rng.random(len(order)) >= FAVOURITE_DEPARTMENT_SHARE)
    department[elsewhere] = _draw(tables.department_prob, persona[elsewhere], rng)
    row = persona * len(catalogue.department_names) + department
    product = catalogue.first_product_of_department[department] + _draw(tables.product_prob, row, rng)

    # One line per product and order, as a till prints it. Sorting the keys keeps each order's lines
    # together; np.unique would hash first, which is far slower at ten million lines.
    n_products = len(catalogue.prices)
    line_key = np.sort(order * n_products + product)
    line_key = line_key[np.append(True, line_key[1:] != line_key[:-1])]
    order, product = line_key // n_products, line_key % n_products
    persona = orders["persona"][order]

    price = catalogue.prices[product]
    budget = orders["value"][order] / orders["lines"][order]
    wanted = np.rint(budget / price * rng.lognormal(0.0, QUANTITY_SIGMA, len(order)))
    return {
        "order": order,
        "customer": orders["customer"][order],
        "product": product,
        "quantity": np.clip(wanted, 1, tables.max_units[persona]).astype(np.int64),
        "price": price,
    }


def _draw_returns(
    tables: _PersonaTables, people: dict, orders: dict, lines: dict, window: _Window, rng: np.random.Generator
) -> dict:
    """Returned lines: same product and price as the purchase, some days later, one credit note per order.
    Returns that would fall after the window are not in the log."""
    delay_days = _integers(tables.ranges["return_delay_days"], orders["persona"], rng)
    seconds = _seconds_of_day(len(delay_days), rng)
    credit_ns = window.start_ns + (orders["day"] + delay_days) * _NS_PER_DAY + seconds * _NS_PER_SECOND
    chosen = rng.random(len(lines["order"])) < people["return_rate"][lines["customer"]]
    chosen &= credit_ns[lines["order"]] < window.end_ns
    bought = lines["quantity"]
    some_units = 1 + np.floor(rng.random(len(bought)) * bought).astype(np.int64)
    returned = np.where(rng.random(len(bought)) < FULL_RETURN_SHARE, bought, some_units)
    line = np.flatnonzero(chosen)
    returned_order = lines["order"][line]  # non-decreasing
    credited_orders = returned_order[np.append(True, returned_order[1:] != returned_order[:-1])]
    return {
        "line": line,  # the purchase line each return undoes
        "quantity": -returned[line],
        "credit_order": credited_orders,
        "credit_ns": credit_ns[credited_orders],
        "credit_of_line": np.searchsorted(credited_orders, returned_order),
    }


def _assemble(orders: dict, lines: dict, returns: dict, dirty: bool, rng: np.random.Generator) -> dict:
    """All log rows (purchases, then returns) in invoice order, with the dirt of a real export applied.

    Events are orders followed by credit notes; invoice numbers follow their time order.
    """
    n_orders, n_lines = len(orders["customer"]), len(lines["order"])
    event_ns = np.concatenate([orders["timestamp_ns"], returns["credit_ns"]])
    chronological = np.argsort(event_ns, kind="stable")
    event_rank = np.empty(len(event_ns), dtype=np.int64)
    event_rank[chronological] = np.arange(len(event_ns))

    purchase_line = np.concatenate([np.arange(n_lines), returns["line"]])
    event = np.concatenate([lines["order"], n_orders + returns["credit_of_line"]])  # non-decreasing
    quantity = np.concatenate([lines["quantity"], returns["quantity"]])
    price = lines["price"][purchase_line]
    known_customer = np.ones(len(event), dtype=bool)
    copies = np.ones(len(event), dtype=np.int64)
    if dirty:
        guest_order = rng.random(n_orders) < GUEST_ORDER_SHARE
        order_of_row = np.concatenate([lines["order"], returns["credit_order"][returns["credit_of_line"]]])
        known_customer = ~guest_order[order_of_row]
        free_candidate = np.zeros(len(event), dtype=bool)  # purchases never returned, so returns match prices
        free_candidate[:n_lines] = True
        free_candidate[returns["line"]] = False
        price = np.where(free_candidate & (rng.random(len(event)) < ZERO_PRICE_SHARE), 0.0, price)
        copies += rng.random(len(event)) < DUPLICATE_LINE_SHARE

    # Each event's rows are consecutive, so invoice order needs offsets only, not a sort of all rows.
    rows_per_event = np.bincount(event, minlength=len(event_ns))
    first_row_of_event = np.cumsum(rows_per_event) - rows_per_event
    rows_by_rank = rows_per_event[chronological]
    first_position_of_rank = np.cumsum(rows_by_rank) - rows_by_rank
    position = first_position_of_rank[event_rank[event]] + np.arange(len(event)) - first_row_of_event[event]
    row = np.empty(len(event), dtype=np.int64)
    row[position] = np.arange(len(event))
    row = np.repeat(row, copies[row])  # a duplicated line sits right after its original
    return {
        "event": event[row],
        "is_credit_note": np.arange(len(event_ns)) >= n_orders,
        "event_rank": event_rank,
        "product": lines["product"][purchase_line[row]],
        "quantity": quantity[row],
        "price": price[row],
        "customer": lines["customer"][purchase_line[row]],
        "known_customer": known_customer[row],
        "timestamp_ns": event_ns[event[row]],
    }


def _text_column(codes: np.ndarray, values, categorical: bool = False) -> pd.Series:
    """`values[codes]` as text (missing where the code is -1), copying no string per row."""
    if categorical:
        return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(values, dtype="str")))
    return pd.Series(pd.array(values, dtype="str").take(codes, allow_fill=True))


def _numbers_as_text(numbers: np.ndarray) -> pd.Series:
    return pd.Series(numbers).astype("str")


def _customer_ids(count: int, numbering: Numbering) -> pd.Series:
    """Numeric ids of equal width (like the Online Retail export), so text order is numeric order."""
    width = max(5, len(str(numbering.total_customers or count)))
    return _numbers_as_text(10**width + numbering.first_customer + np.arange(count))


def _transactions_frame(
    log: dict, people: dict, tables: _PersonaTables, catalogue: _Catalogue, categorical: bool, numbering: Numbering
) -> pd.DataFrame:
    invoice_numbers = _numbers_as_text(numbering.first_invoice + log["event_rank"])
    invoice_ids = invoice_numbers.where(~log["is_credit_note"], CREDIT_NOTE_PREFIX + invoice_numbers)
    product = log["product"]
    product_class = product // catalogue.products_per_class
    customer = log["customer"]
    return pd.DataFrame(
        {
            # each invoice id repeats only a few times: as a categorical it would save little and
            # cost a uniqueness check over millions of labels
            "invoice_id": _text_column(log["event"], invoice_ids.array),
            "customer_id": _text_column(
                np.where(log["known_customer"], customer, -1),
                _customer_ids(len(people["persona"]), numbering).array,
                categorical,
            ),
            "timestamp": pd.Series(log["timestamp_ns"].astype("datetime64[ns]")),
            "product_id": _text_column(product, catalogue.product_ids, categorical),
            "description": _text_column(product, catalogue.descriptions, categorical),
            "department": _text_column(
                catalogue.department_of_class[product_class], catalogue.department_names, categorical
            ),
            "product_class": _text_column(product_class, catalogue.class_names, categorical),
            "quantity": log["quantity"],
            "unit_price": log["price"],
            "country": _text_column(people["country"][customer], tables.countries, categorical),
        },
        columns=list(TRANSACTION_COLUMNS),
    )


def _customers_frame(people: dict, tables: _PersonaTables, window: _Window, numbering: Numbering) -> pd.DataFrame:
    customer_ids = _customer_ids(len(people["persona"]), numbering)
    first, last = people["first_name"], people["last_name"]
    email = (
        _text_column(first, _email_part(tables.first_names))
        + "."
        + _text_column(last, _email_part(tables.last_names))
        + "."
        + customer_ids
        + "@"
        + _text_column(people["email_domain"], tables.email_domains)
    )
    start = window.start.as_unit("ns").to_datetime64()
    day = np.timedelta64(1, "D")
    return pd.DataFrame(
        {
            "customer_id": customer_ids,
            "persona": _text_column(people["persona"], tables.names),
            "name": _text_column(first, tables.first_names) + " " + _text_column(last, tables.last_names),
            "email": email,
            "city": _text_column(people["city"], tables.cities),
            "country": _text_column(people["country"], tables.countries),
            "age": people["age"],
            "gender": _text_column(people["gender"], tables.genders),
            "has_children": people["has_children"],
            "lifestyle": _text_column(people["lifestyle"], tables.lifestyles),
            "signup_date": start + (people["active_from"] - people["prior_tenure_days"]) * day,
            "active_from": start + people["active_from"] * day,
            "active_until": start + people["active_until"] * day,  # first day no longer buying
            "typical_segment": _text_column(people["persona"], tables.segments),
            "expected_orders_per_month": people["orders_per_month"].round(3),
            "typical_order_value": people["order_value"].round(2),
            "return_propensity": people["return_rate"].round(4),
        }
    )


def _email_part(names: np.ndarray) -> np.ndarray:
    """Names as e-mail address parts: lower case, letters and digits only ("O'Brien" -> "obrien")."""
    return pd.Series(names).str.lower().str.replace(r"[^a-z0-9]", "", regex=True).to_numpy(dtype=object)


def write_generated(
    transactions_path: Path,
    customers_path: Path,
    customers: int,
    months: int,
    seed: int,
    start_month: str = "2025-01",
    block_customers: int = BLOCK_CUSTOMERS,
) -> int:
    """Generate a log of any size into two parquet files, `block_customers` customers at a time, so
    memory stays that of one block; returns the number of transaction rows.

    Up to `block_customers` customers this is exactly `generate` (same seed, same data). Larger logs are
    independent blocks (seeds spawned from `seed`), each numbering its customers and invoices on from
    the previous block: the log is invoice-ordered within a block, and the same arguments always give
    the same files.
    """
    blocks = -(-customers // block_customers)
    seeds = [seed] if blocks == 1 else [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(blocks)]
    numbering, rows = Numbering(total_customers=customers), 0
    with (
        PartitionedParquetWriter(lambda _: Path(transactions_path)) as log_file,
        PartitionedParquetWriter(lambda _: Path(customers_path)) as truth_file,
    ):
        for block, block_seed in enumerate(seeds):
            size = min(block_customers, customers - block * block_customers)
            data = generate(size, months, block_seed, start_month, numbering=numbering)
            log_file.write("log", data.transactions)
            truth_file.write("customers", data.customers)
            rows += len(data.transactions)
            numbering = replace(
                numbering,
                first_customer=numbering.first_customer + size,
                first_invoice=numbering.first_invoice + int(data.transactions["invoice_id"].nunique()),
            )
    return rows


def write_transactions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a generated table as .csv or .parquet, chosen by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputDataError(f"{path}: cannot write {suffix or 'a file without suffix'}; use .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path
