"""US state outlines: the 50 states and DC, keyed like the warehouse's state codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from shapely.geometry import shape

from purchase_patterns.geo import us_states_geojson

SEED = Path(__file__).resolve().parents[1] / "transform" / "seeds" / "us_states.csv"


def test_states_match_the_reference_seed():
    geo = us_states_geojson()
    with SEED.open(encoding="utf-8") as fh:
        codes = {row["code"] for row in csv.DictReader(fh)}
    ids = [feat["id"] for feat in geo["features"]]
    assert len(ids) == 51 and set(ids) == codes
    for feat in geo["features"]:
        geom = shape(feat["geometry"])
        assert geom.is_valid and not geom.is_empty, feat["id"]
        west, south, east, north = geom.bounds
        assert -180 <= west < east < 0 and 15 < south < north < 72, feat["id"]
    assert len(json.dumps(geo)) < 400_000  # small enough to send with every map
