"""Global filters: one model of what a user selected, and the portable SQL that applies it.

The dashboard's sidebar and ``report --filter`` both describe a selection with
:class:`Filters`; :func:`purchase_scope` and :func:`customer_scope` turn it into the
``from ... where ...`` part of a query on the marts.

Semantics, the same on every page:

- **purchase filters** (season, category, purchase dates) select purchase lines of
  ``marts.fct_purchases`` (category through ``marts.dim_products``);
- **customer filters** (state, census region, gender, age band, subscription, segment) select
  customers by their current attributes in ``marts.dim_customers`` (segment: from
  ``analytics.customer_segments``);
- a purchase is in scope when it passes the purchase filters and its customer passes the
  customer filters; a customer is in scope when they pass the customer filters and, if a
  purchase filter is set, have at least one purchase in scope.

The report (``report --filter KEY=VALUE``, see :func:`parse_filters`) and the insights read
the same model through :func:`purchase_lines`; :func:`validate_filters` checks the values
that depend on the data (categories, segments, whether dates exist).

Every selected value becomes a named parameter (``@season_0``, ``@date_from``): only
identifiers from this module ever enter the SQL text, so the same clause runs on DuckDB and
BigQuery and a value such as ``'; drop table x; --`` is just a value that matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any

from .datastore import DataStore
from .errors import UsageError
from .schema import GENDERS, SEASONS, US_STATES

#: Multi-valued filters and the column each one tests (alias f = purchases, p = products,
#: c = customers, s = segments).
PURCHASE_COLUMNS = {"season": "f.season", "category": "p.category_name"}
CUSTOMER_COLUMNS = {
    "state": "c.state_name",
    "census_region": "c.census_region",
    "gender": "c.gender",
    "age_band": "c.age_band",
}
SEGMENT_COLUMN = "s.segment"
LABELS = {
    "season": "Season",
    "category": "Category",
    "state": "State",
    "census_region": "Region",
    "gender": "Gender",
    "age_band": "Age band",
    "segment": "Segment",
    "subscription": "Subscription",
    "date_from": "From",
    "date_to": "To",
}
AGE_BANDS: tuple[str, ...] = ("<25", "25-34", "35-44", "45-54", "55-64", "65+", "Unknown")
CENSUS_REGIONS: tuple[str, ...] = ("Northeast", "Midwest", "South", "West")
#: Keys whose values come from a fixed set (checked when parsed); category and segment are
#: checked against the data by :func:`validate_filters`.
CHOICES: dict[str, tuple[str, ...]] = {
    "season": tuple(SEASONS),
    "state": tuple(US_STATES),
    "census_region": CENSUS_REGIONS,
    "gender": tuple(GENDERS),
    "age_band": AGE_BANDS,
}
#: Every filter key and what it restricts (``--help`` and error messages).
FILTER_KEYS: dict[str, str] = {
    "season": "season of the purchase",
    "category": "product category",
    "state": "customer's US state (name or two-letter code)",
    "census_region": "customer's Census region",
    "gender": "customer's gender",
    "age_band": "customer's age band",
    "segment": "customer segment (after analyze)",
    "subscription": "subscriber: yes or no",
    "date_from": "first purchase date, YYYY-MM-DD (dated data)",
    "date_to": "last purchase date, YYYY-MM-DD (dated data)",
}
_STATE_CODES = {code: name for name, (code, *_rest) in US_STATES.items()}
_TRUE = {"yes", "true", "y", "1", "subscribed"}
_FALSE = {"no", "false", "n", "0", "not subscribed"}


@dataclass(frozen=True)
class Filters:
    """A selection. Empty tuples and None mean "no filter" on that key. Values are kept
    sorted, so the same selection always compares (and caches) equal."""

    season: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    census_region: tuple[str, ...] = ()
    gender: tuple[str, ...] = ()
    age_band: tuple[str, ...] = ()
    segment: tuple[str, ...] = ()
    subscription: bool | None = None
    date_from: date | None = None
    date_to: date | None = None

    def __post_init__(self) -> None:
        for key in (*PURCHASE_COLUMNS, *CUSTOMER_COLUMNS, "segment"):
            values = getattr(self, key)
            if isinstance(values, str):
                values = (values,)
            object.__setattr__(self, key, tuple(sorted({str(v) for v in values or ()})))
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise UsageError(f"filter date_from ({self.date_from}) is after date_to "
                             f"({self.date_to})")

    # -- what is set ----------------------------------------------------------------------------
    @property
    def on_purchases(self) -> bool:
        """Whether a purchase filter (season, category, dates) is set."""
        return bool(self.season or self.category or self.date_from or self.date_to)

    @property
    def on_customers(self) -> bool:
        """Whether a customer filter (state, region, gender, age band, subscription,
        segment) is set."""
        return bool(any(getattr(self, k) for k in CUSTOMER_COLUMNS) or self.segment
                    or self.subscription is not None)

    @property
    def is_empty(self) -> bool:
        return not (self.on_purchases or self.on_customers)

    def __bool__(self) -> bool:
        return not self.is_empty

    @property
    def needs_segments(self) -> bool:
        """Whether the selection refers to ``analytics.customer_segments``."""
        return bool(self.segment)

    def get(self, key: str) -> tuple[Any, ...]:
        """The selected values of one key as a tuple (``()`` when not set)."""
        value = getattr(self, key)
        if value is None:
            return ()
        return value if isinstance(value, tuple) else (value,)

    def describe(self) -> list[str]:
        """One human-readable line per filter that is set, e.g. ``Season: Fall, Winter``."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value in ((), None):
                continue
            if isinstance(value, tuple):
                value = ", ".join(value)
            elif isinstance(value, bool):
                value = "subscribed" if value else "not subscribed"
            out.append(f"{LABELS[f.name]}: {value}")
        return out

    def as_dict(self) -> dict[str, Any]:
        """The filters that are set, JSON-friendly (dates as ISO strings)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in ((), None):
                continue
            out[f.name] = (list(value) if isinstance(value, tuple)
                           else value.isoformat() if isinstance(value, date) else value)
        return out

    def as_items(self) -> list[str]:
        """The selection as command-line items (``season=Winter``, ``subscription=yes``), the
        syntax ``report --filter`` accepts; :meth:`parse` reads them back."""
        out = []
        for key, value in self.as_dict().items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                out.append(f"{key}={('yes' if v else 'no') if isinstance(v, bool) else v}")
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Filters:
        """See :func:`from_mapping`."""
        return from_mapping(values)

    @classmethod
    def parse(cls, items: Iterable[str]) -> Filters:
        """See :func:`parse_filters`."""
        return parse_filters(items)


def usage() -> str:
    """One line listing the keys, for error messages and ``--help``."""
    return "use --filter KEY=VALUE with KEY one of: " + ", ".join(FILTER_KEYS)


def _pick(key: str, value: str, choices: Iterable[str]) -> str:
    """The choice matching ``value`` case-insensitively, or a one-line usage error."""
    options = list(choices)
    for option in options:
        if option.lower() == value.lower():
            return option
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    raise UsageError(f"filter {key}={value}: unknown value; use one of: {shown}")


def _choice(key: str, raw: Any) -> str:
    value = str(raw).strip()
    if not value:
        raise UsageError(f"filter {key}: empty value; {usage()}")
    if key == "state" and value.upper() in _STATE_CODES:
        return _STATE_CODES[value.upper()]
    if key in CHOICES:
        return _pick(key, value, CHOICES[key])
    return value


def from_mapping(values: Mapping[str, Any]) -> Filters:
    """Filters from ``{key: value or values}`` (the dashboard's widgets, ``--filter``).
    Values of a fixed set are checked and spelled as in the data here (``ca`` → California,
    ``winter`` → Winter); category and segment values by :func:`validate_filters`. Unknown
    keys and unreadable values raise :class:`~purchase_patterns.errors.UsageError`."""
    unknown = [k for k in values if k not in FILTER_KEYS]
    if unknown:
        raise UsageError(f"unknown filter key {unknown[0]!r}; {usage()}")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        raws = [r for r in (value if isinstance(value, list | tuple | set) else [value])
                if r is not None]
        if not raws:
            continue
        if key in ("subscription", "date_from", "date_to"):
            if len({str(r) for r in raws}) > 1:
                raise UsageError(f"filter {key} may be given once")
            if str(raws[0]).strip() == "":
                raise UsageError(f"filter {key}: empty value; {usage()}")
            kwargs[key] = _boolean(raws[0]) if key == "subscription" else _date(key, raws[0])
        else:
            kwargs[key] = [_choice(key, r) for r in raws]
    return Filters(**kwargs)


def parse_filters(items: Iterable[str]) -> Filters:
    """Filters from ``KEY=VALUE`` items (``report --filter``); a key given twice means either
    value (segment names may contain commas, so values are never split)."""
    merged: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep:
            raise UsageError(f"filter {item!r} is not KEY=VALUE; {usage()}")
        if key not in FILTER_KEYS:
            raise UsageError(f"unknown filter key {key!r}; {usage()}")
        merged.setdefault(key, []).append(value)
    return from_mapping(merged)


def validate_filters(store: DataStore, flt: Filters, *, dated: bool) -> Filters:
    """Check the values that depend on the data (categories, segments) and that date filters
    are used on dated data only; returns the filters with values spelled as in the data."""
    if (flt.date_from or flt.date_to) and not dated:
        key = "date_from" if flt.date_from else "date_to"
        raise UsageError(f"filter {key}: this data has no purchase dates")
    changes: dict[str, tuple[str, ...]] = {}
    if flt.category:
        known = store.query(
            f"select distinct category_name as v from {store.relation('marts', 'dim_products')}"  # noqa: S608
            " where not is_unknown_product order by 1")["v"].tolist()
        if not known:
            raise UsageError("filter category: this data has no product categories")
        changes["category"] = tuple(_pick("category", v, known) for v in flt.category)
    if flt.segment:
        if not store.has_table("analytics", "customer_segments"):
            raise UsageError("filter segment: no segments yet; run 'purchase-patterns "
                             "analyze' first")
        known = store.query(
            "select distinct segment as v from "  # noqa: S608
            f"{store.relation('analytics', 'customer_segments')} order by 1")["v"].tolist()
        changes["segment"] = tuple(_pick("segment", v, known) for v in flt.segment)
    return replace(flt, **changes) if changes else flt


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"subscription filter {value!r}: use yes or no")


def _date(key: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise UsageError(f"filter {key}={value}: not a date like 2024-01-31") from None


# -- SQL ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The ``from ... where ...`` text of a query and its named parameters."""

    sql: str
    params: dict[str, Any]


def _in(column: str, name: str, values: tuple[str, ...], params: dict[str, Any]) -> str:
    names = []
    for i, value in enumerate(values):
        params[f"{name}_{i}"] = value
        names.append(f"@{name}_{i}")
    return f"{column} in ({', '.join(names)})"


def _purchase_conditions(f: Filters, params: dict[str, Any]) -> list[str]:
    out = [_in(col, key, getattr(f, key), params)
           for key, col in PURCHASE_COLUMNS.items() if getattr(f, key)]
    if f.date_from:
        params["date_from"] = f.date_from
        out.append("f.purchase_date >= @date_from")
    if f.date_to:
        params["date_to"] = f.date_to
        out.append("f.purchase_date <= @date_to")
    return out


def _customer_conditions(f: Filters, params: dict[str, Any]) -> list[str]:
    out = [_in(col, key, getattr(f, key), params)
           for key, col in CUSTOMER_COLUMNS.items() if getattr(f, key)]
    if f.subscription is not None:
        params["subscription"] = f.subscription
        out.append("c.has_subscription = @subscription")
    if f.segment:
        out.append(_in(SEGMENT_COLUMN, "segment", f.segment, params))
    return out


def _check_segments(store: DataStore, f: Filters) -> None:
    if f.segment and not store.has_table("analytics", "customer_segments"):
        raise UsageError("the segment filter needs analytics.customer_segments, which the "
                         "analyze stage writes; this warehouse has none")


def _where(conditions: list[str]) -> str:
    return (" where " + " and ".join(conditions)) if conditions else ""


def purchase_scope(store: DataStore, f: Filters, *, products: bool = False,
                   customers: bool = False, segments: bool = False,
                   states: bool = False, segments_join: str = "left") -> Scope:
    """``from ... where ...`` of the purchase lines in scope.

    Aliases: ``f`` = ``marts.fct_purchases``; ``p`` = ``marts.dim_products`` (joined when
    ``products`` or a category filter); ``c`` = ``marts.dim_customers`` (when ``customers`` or
    a customer filter); ``s`` = ``analytics.customer_segments`` (left-joined when ``segments``
    or a segment filter: ``s.segment`` is NULL for a customer without a segment); ``us`` =
    ``reference.us_states`` of the purchase line's state (left-joined when ``states``). Joins
    are added only when needed, so an unfiltered scan reads the fact table alone.
    ``segments_join="inner"`` keeps only customers with a segment."""
    if segments_join not in ("left", "inner"):
        raise ValueError(f"segments_join: {segments_join}")
    _check_segments(store, f)
    params: dict[str, Any] = {}
    sql = f"from {store.relation('marts', 'fct_purchases')} as f"
    if products or f.category:
        sql += (f" inner join {store.relation('marts', 'dim_products')} as p"
                " on p.product_id = f.product_id")
    customer_conditions = _customer_conditions(f, params)
    if customers or customer_conditions:
        sql += (f" inner join {store.relation('marts', 'dim_customers')} as c"
                " on c.customer_id = f.customer_id")
    if segments or f.segment:
        sql += (f" {segments_join} join {store.relation('analytics', 'customer_segments')}"
                " as s on s.customer_id = f.customer_id")
    if states:
        sql += (f" left join {store.relation('reference', 'us_states')} as us"
                " on us.state = f.state_name")
    conditions = _purchase_conditions(f, params) + customer_conditions
    return Scope(sql + _where(conditions), params)


def customer_scope(store: DataStore, f: Filters, *, table: str = "dim_customers",
                   segments: bool = False, predictions: bool = False) -> Scope:
    """``from ... where ...`` of the customers in scope, one row each.

    Alias ``c`` is ``marts.<table>`` (``dim_customers`` or ``customer_features``: both carry
    the customer filter columns); ``s`` = ``analytics.customer_segments`` (left-joined when
    ``segments`` or a segment filter); ``cp`` = ``analytics.customer_predictions``
    (left-joined when ``predictions``). With a purchase filter, only customers with at least
    one purchase in scope are kept."""
    if table not in ("dim_customers", "customer_features"):
        raise ValueError(f"customer scope over an unexpected table: {table}")
    _check_segments(store, f)
    params: dict[str, Any] = {}
    sql = f"from {store.relation('marts', table)} as c"
    if segments or f.segment:
        sql += (f" left join {store.relation('analytics', 'customer_segments')} as s"
                " on s.customer_id = c.customer_id")
    if predictions:
        sql += (f" left join {store.relation('analytics', 'customer_predictions')} as cp"
                " on cp.customer_id = c.customer_id")
    conditions = _customer_conditions(f, params)
    purchase_conditions = _purchase_conditions(f, params)
    if purchase_conditions:
        join = ""
        if f.category:
            join = (f" inner join {store.relation('marts', 'dim_products')} as p"
                    " on p.product_id = f.product_id")
        conditions.append(
            "c.customer_id in (select f.customer_id from "  # noqa: S608 - package names only
            f"{store.relation('marts', 'fct_purchases')} as f{join}"
            f"{_where(purchase_conditions)})")
    return Scope(sql + _where(conditions), params)


def purchase_lines(store: DataStore, f: Filters, *,
                   with_segments: bool = False) -> tuple[str, dict[str, Any]]:
    """The insights' view of :func:`purchase_scope`: the text after ``from`` over the purchase
    lines in scope, with ``f`` (purchases), ``c`` (customers) and ``p`` (products) always
    joined, and ``s`` (segments, inner join: customers without a segment drop out) when
    ``with_segments`` or a segment filter asks for it; and its parameters."""
    scope = purchase_scope(store, f, products=True, customers=True, segments=with_segments,
                           segments_join="inner")
    return scope.sql.removeprefix("from "), scope.params
