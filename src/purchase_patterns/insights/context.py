"""What every analysis needs: the store, the settings, what the data supports, the filters,
and a record of which analyses ran or were skipped and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from ..capabilities import Capability, DataProfile, decide, profile
from ..datastore import DataStore
from ..filters import Filters, purchase_lines
from ..settings import InsightsSettings, Settings

Progress = Callable[[str, float | None], None]


def _quiet(_msg: str, _frac: float | None = None) -> None:
    return None


@dataclass
class Context:
    store: DataStore
    settings: Settings
    profile: DataProfile
    decisions: dict[str, Capability]
    filters: Filters = field(default_factory=Filters)
    progress: Progress = _quiet
    #: one dict per analysis: analysis, stage, status (ran / skipped), reason
    analyses: list[dict[str, str]] = field(default_factory=list)

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def cfg(self) -> InsightsSettings:
        return self.settings.insights

    def supported(self, analysis: str) -> Capability:
        return self.decisions[analysis]

    def record(self, analysis: str, ran: bool, reason: str, stage: str = "analyze") -> bool:
        """Note that ``analysis`` ran (or why not), replacing an earlier note; returns ``ran``."""
        self.analyses = [a for a in self.analyses if a["analysis"] != analysis]
        self.analyses.append({"analysis": analysis, "stage": stage,
                              "status": "ran" if ran else "skipped", "reason": reason})
        return ran

    def gate(self, analysis: str) -> bool:
        """Record the capability decision for ``analysis`` as skipped when unsupported;
        returns whether the analysis may run (the caller records what it then did)."""
        cap = self.decisions[analysis]
        if not cap.supported:
            self.record(analysis, False, cap.reason)
        return cap.supported

    def span(self) -> tuple[date, date] | None:
        """First and last date of the data in scope (date filters applied); None when the
        data has no dates."""
        if not self.profile.dated or not self.profile.first_date:
            return None
        lo, hi = self.profile.first_date, self.profile.last_date
        if self.filters.get("date_from"):
            lo = max(lo, self.filters.get("date_from")[0])
        if self.filters.get("date_to"):
            hi = min(hi, self.filters.get("date_to")[0])
        return (lo, hi) if lo <= hi else None

    def lines(self, *, with_segments: bool = False) -> tuple[str, dict[str, Any]]:
        """``FROM ... WHERE ...`` over the purchase lines in scope (see ``filters``)."""
        return purchase_lines(self.store, self.filters, with_segments=with_segments)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.store.query(sql, params or {})

    def has(self, layer: str, table: str) -> bool:
        return self.store.has_table(layer, table)


def new_context(store_: DataStore, settings: Settings, filters: Filters | None = None,
                progress: Progress = _quiet) -> Context:
    """A :class:`Context` with the data profiled and the capabilities decided."""
    prof = profile(store_)
    return Context(store_, settings, prof, {d.analysis: d for d in decide(prof)},
                   filters or Filters(), progress)
