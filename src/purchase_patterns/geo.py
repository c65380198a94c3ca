"""US state outlines for maps, without any download at run time.

The shapes come from the Census Bureau's 2016 cartographic boundary file (1:500,000) that
the ``plotly-geo`` package ships for plotly's own US maps. They are read once per process,
limited to the 50 states and DC, and simplified to what a browser draws quickly (about
0.05 degrees, about 5 km). Feature ids are the two-letter state codes used by
``marts.dim_customers.state_code`` and ``marts.agg_sales_by_state.state_code``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

#: FIPS codes above 56 are territories (American Samoa, Guam, Northern Mariana Islands,
#: Puerto Rico, Virgin Islands); the warehouse knows the 50 states and DC.
_LAST_STATE_FIPS = 56
SIMPLIFY_DEGREES = 0.05


@functools.cache
def us_states_geojson() -> dict[str, Any]:
    """A GeoJSON FeatureCollection of the 50 states and DC, ids = state codes."""
    import _plotly_geo
    import shapefile  # pyshp
    import shapely
    from shapely.geometry import MultiPolygon, mapping, shape

    base = Path(_plotly_geo.__file__).parent / "package_data" / "cb_2016_us_state_500k"
    features = []
    with shapefile.Reader(str(base)) as reader:
        for item in reader.iterShapeRecords():
            rec = item.record.as_dict()
            if int(rec["STATEFP"]) > _LAST_STATE_FIPS:
                continue
            geom = shape(item.shape.__geo_interface__)
            if rec["STUSPS"] == "AK" and isinstance(geom, MultiPolygon):
                # the western Aleutians cross the antimeridian; drawn as a sliver at the
                # other edge of the map they would only mislead
                geom = MultiPolygon([g for g in geom.geoms if g.bounds[0] < 0])
            geom = shapely.set_precision(
                geom.simplify(SIMPLIFY_DEGREES, preserve_topology=True), 0.01)
            features.append({"type": "Feature", "id": rec["STUSPS"],
                             "properties": {"name": rec["NAME"]}, "geometry": mapping(geom)})
    features.sort(key=lambda feat: feat["id"])
    return {"type": "FeatureCollection", "features": features}
