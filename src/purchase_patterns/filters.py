"""Filters for the report and the dashboard: a fixed set of keys, validated, turned into a
portable ``WHERE`` clause with bound ``@parameters`` (values never enter the SQL text).

Keys and what they restrict (several values of one key are alternatives, different keys
must all hold)::

    season         f.season                purchase line: Winter, Spring, Summer, Fall
    category       p.category_name         product category (values present in the data)
    state          c.state_name            customer's state: full name or two-letter code
    census_region  c.census_region         Northeast, Midwest, South, West
    gender         c.gender                Male, Female, Non-binary, Other, Unknown
    age_band       c.age_band              <25, 25-34, 35-44, 45-54, 55-64, 65+, Unknown
    segment        s.segment               customer segment (values present in the data)
    subscription   c.has_subscription      yes / no
    date_from      f.purchase_date >=      YYYY-MM-DD (dated data only; once)
    date_to        f.purchase_date <=      YYYY-MM-DD (dated data only; once)

Customer attributes (state, region, gender, age band, subscription) are the customer's latest
known values (``marts.dim_customers``). The clause is written over these aliases::

    marts.fct_purchases f
    join marts.dim_customers c on c.customer_id = f.customer_id
    join marts.dim_products p on p.product_id = f.product_id
    join analytics.customer_segments s on s.customer_id = f.customer_id   -- segment key only

:func:`purchase_lines` returns exactly that ``FROM ... WHERE ...`` text with its parameters.
Typical use::

    flt = parse_filters(["state=CA", "category=Footwear"])   # syntax and fixed value sets
    flt = validate_filters(store, flt)                       # values that depend on the data
    source, params = purchase_lines(store, flt)
    store.query(f"select count(*) as n from {source}", params)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from .datastore import DataStore
from .errors import UsageError
from .schema import GENDERS, SEASONS, US_STATES

AGE_BANDS: tuple[str, ...] = ("<25", "25-34", "35-44", "45-54", "55-64", "65+", "Unknown")
CENSUS_REGIONS: tuple[str, ...] = ("Northeast", "Midwest", "South", "West")
_YES = ("yes", "y", "true", "1")
_NO = ("no", "n", "false", "0")


@dataclass(frozen=True)
class FilterKey:
    """One filter key: the SQL column it restricts and how its values are checked."""

    key: str
    column: str
    #: ``choice`` (a fixed or data-dependent set), ``bool``, ``date_from`` or ``date_to``
    kind: str
    help: str
    #: fixed set of accepted values (None: checked against the data, or not a choice)
    choices: tuple[str, ...] | None = None


FILTER_KEYS: dict[str, FilterKey] = {k.key: k for k in (
    FilterKey("season", "f.season", "choice", "season of the purchase", SEASONS),
    FilterKey("category", "p.category_name", "choice", "product category"),
    FilterKey("state", "c.state_name", "choice", "customer's US state (name or code)",
              tuple(US_STATES)),
    FilterKey("census_region", "c.census_region", "choice", "customer's Census region",
              CENSUS_REGIONS),
    FilterKey("gender", "c.gender", "choice", "customer's gender", GENDERS),
    FilterKey("age_band", "c.age_band", "choice", "customer's age band", AGE_BANDS),
    FilterKey("segment", "s.segment", "choice", "customer segment (after analyze)"),
    FilterKey("subscription", "c.has_subscription", "bool", "subscriber: yes or no"),
    FilterKey("date_from", "f.purchase_date", "date_from", "first purchase date, YYYY-MM-DD"),
    FilterKey("date_to", "f.purchase_date", "date_to", "last purchase date, YYYY-MM-DD"),
)}

_STATE_CODES = {code: name for name, (code, *_rest) in US_STATES.items()}


def usage() -> str:
    """One line listing the keys, for error messages and ``--help``."""
    return "use --filter KEY=VALUE with KEY one of: " + ", ".join(FILTER_KEYS)


@dataclass(frozen=True)
class Filters:
    """A validated filter set: key → accepted values (alternatives), in key order."""

    items: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    def get(self, key: str) -> tuple[Any, ...]:
        return dict(self.items).get(key, ())

    def as_dict(self) -> dict[str, list[Any]]:
        return {k: [v.isoformat() if isinstance(v, date) else v for v in vals]
                for k, vals in self.items}

    @property
    def needs_segments(self) -> bool:
        """Whether the clause refers to ``s`` (analytics.customer_segments)."""
        return any(k == "segment" for k, _ in self.items)

    def describe(self) -> str:
        """Plain words: ``state = California; category = Footwear or Clothing``."""
        if not self.items:
            return "no filters (all purchases)"
        parts = []
        for key, vals in self.items:
            shown = [("yes" if v else "no") if isinstance(v, bool) else
                     v.isoformat() if isinstance(v, date) else str(v) for v in vals]
            op = {"date_from": "from", "date_to": "up to"}.get(key)
            parts.append(f"purchases {op} {shown[0]}" if op else
                         f"{key.replace('_', ' ')} = {' or '.join(shown)}")
        return "; ".join(parts)

    def where(self) -> tuple[str, dict[str, Any]]:
        """The condition (``true`` when empty) and its parameters, over the aliases above."""
        conds: list[str] = []
        params: dict[str, Any] = {}
        for key, vals in self.items:
            spec = FILTER_KEYS[key]
            if spec.kind == "date_from":
                conds.append(f"{spec.column} >= @flt_{key}")
                params[f"flt_{key}"] = vals[0]
            elif spec.kind == "date_to":
                conds.append(f"{spec.column} <= @flt_{key}")
                params[f"flt_{key}"] = vals[0]
            else:
                names = [f"flt_{key}_{i}" for i in range(len(vals))]
                params.update(zip(names, vals, strict=True))
                conds.append(f"{spec.column} in ({', '.join('@' + n for n in names)})")
        return (" and ".join(conds) if conds else "true"), params


def _normalise(spec: FilterKey, raw: str) -> Any:
    value = raw.strip()
    if not value:
        raise UsageError(f"filter {spec.key}: empty value; {usage()}")
    if spec.kind == "bool":
        low = value.lower()
        if low in _YES:
            return True
        if low in _NO:
            return False
        raise UsageError(f"filter {spec.key}={value}: use yes or no")
    if spec.kind in ("date_from", "date_to"):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise UsageError(f"filter {spec.key}={value}: not a date like 2024-01-31") from None
    if spec.key == "state" and value.upper() in _STATE_CODES:
        return _STATE_CODES[value.upper()]
    if spec.choices is not None:
        return _pick(spec, value, spec.choices)
    return value


def _pick(spec: FilterKey, value: str, choices: Iterable[str]) -> str:
    """The choice matching ``value`` case-insensitively, or a one-line usage error."""
    options = list(choices)
    for option in options:
        if option.lower() == value.lower():
            return option
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    raise UsageError(f"filter {spec.key}={value}: unknown value; use one of: {shown}")


def from_mapping(values: Mapping[str, Iterable[str] | str]) -> Filters:
    """Filters from ``{key: value or values}`` (the dashboard's widgets). Values of a fixed
    set are checked here; category and segment values in :func:`validate_filters`."""
    unknown = [k for k in values if k not in FILTER_KEYS]
    if unknown:
        raise UsageError(f"unknown filter key {unknown[0]!r}; {usage()}")
    items: list[tuple[str, tuple[Any, ...]]] = []
    for key in FILTER_KEYS:  # key order, whatever order the caller used
        if key not in values:
            continue
        raw = values[key]
        raws = [raw] if isinstance(raw, str) else list(raw)
        if not raws:
            continue
        spec = FILTER_KEYS[key]
        normalised = tuple(dict.fromkeys(_normalise(spec, str(r)) for r in raws))
        if spec.kind in ("date_from", "date_to") and len(normalised) > 1:
            raise UsageError(f"filter {key} may be given once")
        items.append((key, normalised))
    flt = Filters(tuple(items))
    lo, hi = flt.get("date_from"), flt.get("date_to")
    if lo and hi and lo[0] > hi[0]:
        raise UsageError(f"filter date_from ({lo[0]}) is after date_to ({hi[0]})")
    return flt


def parse_filters(args: Iterable[str]) -> Filters:
    """Filters from ``KEY=VALUE`` strings (``--filter`` options); repeated keys are ORed."""
    values: dict[str, list[str]] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep:
            raise UsageError(f"filter {arg!r} is not KEY=VALUE; {usage()}")
        if key not in FILTER_KEYS:
            raise UsageError(f"unknown filter key {key!r}; {usage()}")
        values.setdefault(key, []).append(value)
    return from_mapping(values)


def validate_filters(store: DataStore, flt: Filters, *, dated: bool) -> Filters:
    """Check the values that depend on the data (categories, segments) and that date filters
    are used on dated data only; returns the filters with values spelled as in the data."""
    items: list[tuple[str, tuple[Any, ...]]] = []
    for key, vals in flt.items:
        spec = FILTER_KEYS[key]
        if spec.kind in ("date_from", "date_to") and not dated:
            raise UsageError(f"filter {key}: this data has no purchase dates")
        if key == "category":
            known = store.query(
                f"select distinct category_name as v from {store.relation('marts', 'dim_products')}"  # noqa: S608
                " where not is_unknown_product order by 1")["v"].tolist()
            if not known:
                raise UsageError("filter category: this data has no product categories")
            vals = tuple(_pick(spec, v, known) for v in vals)
        elif key == "segment":
            if not store.has_table("analytics", "customer_segments"):
                raise UsageError("filter segment: no segments yet; run 'purchase-patterns "
                                 "analyze' first")
            known = store.query(
                "select distinct segment as v from "  # noqa: S608
                f"{store.relation('analytics', 'customer_segments')} order by 1")["v"].tolist()
            vals = tuple(_pick(spec, v, known) for v in vals)
        items.append((key, vals))
    return Filters(tuple(items))


def purchase_lines(store: DataStore, flt: Filters, *,
                   with_segments: bool = False) -> tuple[str, dict[str, Any]]:
    """``FROM`` text (joins and ``WHERE``) over purchase lines matching ``flt``, and its
    parameters. ``with_segments`` joins ``analytics.customer_segments`` as ``s`` even when
    no segment filter asks for it (an inner join: customers without a segment drop out)."""
    where, params = flt.where()
    source = (
        f"{store.relation('marts', 'fct_purchases')} as f"
        f" join {store.relation('marts', 'dim_customers')} as c on c.customer_id = f.customer_id"
        f" join {store.relation('marts', 'dim_products')} as p on p.product_id = f.product_id"
    )
    if with_segments or flt.needs_segments:
        source += (f" join {store.relation('analytics', 'customer_segments')} as s"
                   " on s.customer_id = f.customer_id")
    return f"{source} where {where}", params
