"""CSV exports neutralise spreadsheet formulas in text cells and headers, and keep numbers."""

from __future__ import annotations

import csv
import io

import pandas as pd

from purchase_patterns.exports import neutralise, to_csv_bytes


def test_formula_cells_are_made_inert():
    assert neutralise("=1+1") == "'=1+1"
    for prefix in ("+", "-", "@", "\t", "\r"):
        assert neutralise(prefix + "x") == "'" + prefix + "x"
    assert neutralise("Texas") == "Texas"
    assert neutralise(-5) == -5


def test_csv_bytes():
    frame = pd.DataFrame({
        "customer_id": ["=HYPERLINK(\"http://x\")", "c2", None],
        "amount": [-12.5, 3.0, 1.0],
        "@header": ["+cmd", "ok", "-1"],
    })
    rows = list(csv.reader(io.StringIO(to_csv_bytes(frame).decode("utf-8"))))
    assert rows[0] == ["customer_id", "amount", "'@header"]
    assert rows[1] == ["'=HYPERLINK(\"http://x\")", "-12.5", "'+cmd"]
    assert rows[2] == ["c2", "3.0", "ok"]
    assert rows[3] == ["", "1.0", "'-1"]
    assert frame.loc[0, "customer_id"].startswith("=")  # the input frame is untouched
