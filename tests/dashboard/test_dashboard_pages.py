"""Every page under ``streamlit.testing`` on real warehouses: without the analytics tables
(pages say what is missing), with contract analytics tables, on a file without dates (date
sections explain why they are empty) and on a dated log; filters, access and publishing."""

from __future__ import annotations

from pathlib import Path

import pytest

from purchase_patterns.publish import current
from purchase_patterns.settings import load_settings
from purchase_patterns.warehouse import connect

VIEWS = Path(__file__).resolve().parents[2] / "dashboard" / "views"
PAGES = ["overview", "segments", "trends", "products", "geography", "customers",
         "predictions", "data_quality"]
WAREHOUSES = [("kaggle", False), ("kaggle", True), ("synthetic", True)]


def _texts(at, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _scalar(home, sql: str):
    """Independent SQL on the published copy (opened with the project's configuration, as
    the app holds it open in this process)."""
    settings = load_settings(home=home)
    con = connect(settings, read_only=True, path=current(settings))
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize(("name", "analytics"), WAREHOUSES,
                         ids=[f"{n}{'+analytics' if a else ''}" for n, a in WAREHOUSES])
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(app, published_home, page, name, analytics):
    at = app(published_home(name, analytics), page)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title and at.title[0].value.lower() == page.replace("_", " ")
    assert not at.error, _texts(at, "error")


def test_missing_analytics_tables_are_explained(app, published_home):
    home = published_home("kaggle")
    info = _texts(app(home, "segments"), "info")
    assert "Segments are computed by the analyze stage; this warehouse has none yet" in info
    assert "analytics.customer_predictions" in _texts(app(home, "predictions"), "info")
    assert "analytics.affinity" in _texts(app(home, "products"), "info")
    assert "analytics.recommendations" in _texts(app(home), "info")


def test_undated_file_explains_empty_date_sections(app, published_home):
    home = published_home("kaggle", analytics=True)
    at = app(home, "trends")
    assert "Monthly, weekly and weekday series are empty: the data has no purchase dates" \
        in _texts(at, "info")
    assert "trend_grain" not in [r.key for r in at.radio]
    at = app(home)
    assert _metric(at, "Repeat rate") == "n/a"
    assert "filter_dates" not in [d.key for d in at.date_input]
    assert "heuristic" in _texts(app(home, "predictions"), "warning")


def test_overview_kpis_follow_the_filters(app, published_home):
    home = published_home("kaggle", analytics=True)
    at = app(home)
    assert _metric(at, "Customers") == f"{_scalar(home, 'select count(*) from marts.dim_customers'):,}"
    at.multiselect(key="filter_gender").set_value(["Female"]).run()
    at.multiselect(key="filter_category").set_value(["Footwear"]).run()
    expected = _scalar(home, """
        select count(distinct f.customer_id) from marts.fct_purchases f
        join marts.dim_products p using (product_id) join marts.dim_customers c using (customer_id)
        where c.gender = 'Female' and p.category_name = 'Footwear'""")
    revenue = _scalar(home, """
        select sum(f.amount) from marts.fct_purchases f
        join marts.dim_products p using (product_id) join marts.dim_customers c using (customer_id)
        where c.gender = 'Female' and p.category_name = 'Footwear'""")
    assert 0 < expected < 3900
    assert _metric(at, "Customers") == f"{expected:,}"
    assert _metric(at, "Revenue") == f"${float(revenue):,.0f}"
    assert "Filtered by Category: Footwear; Gender: Female." in _texts(at, "caption")
    # the filters stay set on every page
    at.switch_page(str(VIEWS / "segments.py"))
    at.run()
    assert "Filtered by Category: Footwear; Gender: Female." in _texts(at, "caption")


def test_dated_log_offers_date_filter(app, published_home):
    home = published_home("synthetic", analytics=True)
    at = app(home)
    first = _scalar(home, "select min(purchase_date) from marts.fct_purchases")
    last = _scalar(home, "select max(purchase_date) from marts.fct_purchases")
    assert at.date_input(key="filter_dates").value == (first, last)
    year_end = first.replace(year=first.year + 1)
    at.date_input(key="filter_dates").set_value((first, year_end)).run()
    expected = _scalar(home, f"""
        select count(distinct customer_id) from marts.fct_purchases
        where purchase_date between '{first}' and '{year_end}'""")
    assert 0 < expected < _scalar(home, "select count(*) from marts.dim_customers")
    assert _metric(at, "Customers") == f"{expected:,}"
    assert _metric(at, "Repeat rate").endswith("%")


def test_no_published_warehouse(app, tmp_path):
    at = app(tmp_path / "empty-home")
    assert not at.exception
    assert "No published warehouse" in _texts(at, "info")


def test_password_gate(app, published_home, monkeypatch):
    monkeypatch.setenv("PURCHASE_PATTERNS_DASHBOARD__PASSWORD", "s3cret-pass")
    at = app(published_home("kaggle"))
    assert not at.metric and at.text_input(key="_pp_password")
    at.text_input(key="_pp_password").set_value("wrong").run()
    assert "Wrong password." in _texts(at, "error") and not at.metric
    at.text_input(key="_pp_password").set_value("s3cret-pass").run()
    assert _metric(at, "Customers") == "3,900"


def test_refuses_non_loopback_without_password(app, published_home):
    from streamlit import config

    config.set_option("server.address", "0.0.0.0")  # the fixture restores it
    at = app(published_home("kaggle"))
    assert "non-loopback address without a password" in _texts(at, "error")
    assert not at.metric


def test_customer_lookup(app, published_home):
    home = published_home("synthetic", analytics=True)
    at = app(home, "customers")
    cid = _scalar(home, "select customer_id from marts.customer_features "
                        "order by total_spend desc limit 1")
    at.text_input(key="customer_id").set_value(cid).run()
    assert not at.exception
    spend = _scalar(home, f"select total_spend from marts.customer_features "
                          f"where customer_id = '{cid}'")
    assert _metric(at, "Lifetime spend") == f"${float(spend):,.2f}"
    segment = _scalar(home, f"select segment from analytics.customer_segments "
                            f"where customer_id = '{cid}'")
    assert _metric(at, "Segment") == segment
    at.text_input(key="customer_id").set_value("'; drop table marts.dim_customers; --").run()
    assert "No customer with id" in _texts(at, "warning")


def test_download_report_builds_for_the_filters(app, published_home, tmp_path):
    """The button builds the stakeholder report for the current filters from the published
    copy and offers it for download."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(published_home("kaggle", analytics=True), home)
    at = app(home)
    at.multiselect(key="filter_gender").set_value(["Female"]).run()
    at.sidebar.button(key="download_report").click().run()
    assert not at.exception and not at.error, _texts(at, "error")
    assert at.sidebar.get("download_button")
    reports = list((home / "reports").glob("dashboard-*/report.html"))
    assert len(reports) == 1 and "Female" in reports[0].read_text(encoding="utf-8")


def test_keeps_working_while_a_run_rebuilds_the_warehouse(app, published_home, tmp_path,
                                                          cdnow_sample):
    """A real pipeline run loads another file into the same home while the dashboard
    reruns: no error at any point, every rerun shows the old or the new published data,
    and once the run has published, the next rerun shows the new data."""
    import shutil
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    shutil.copytree(published_home("kaggle"), home)
    at = app(home)
    before = _metric(at, "Customers")
    run = subprocess.Popen([sys.executable, "-m", "purchase_patterns", "--home", str(home),
                            "--json", "run", "-i", str(cdnow_sample)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    while run.poll() is None:
        at.run()
        assert not at.exception and not at.error, (_texts(at, "exception"),
                                                  _texts(at, "error"))
        seen.append(_metric(at, "Customers"))
        time.sleep(0.2)
    out, err = run.communicate()
    assert run.returncode == 0, err
    at.run()
    after = _metric(at, "Customers")
    expected = _scalar(home, "select count(*) from marts.dim_customers")
    assert after == f"{expected:,}" != before
    assert len(seen) >= 3 and set(seen) <= {before, after}


def test_data_quality_shows_rejected_rows_with_reasons(app, kaggle_csv, tmp_path):
    """A file with broken rows: the page lists each reason and the rows, with file line and
    column, and the run history."""
    from purchase_patterns.pipeline import run_pipeline

    lines = kaggle_csv.read_text(encoding="utf-8").splitlines()[:301]
    header = lines[0].split(",")
    amount, state = header.index("Purchase Amount (USD)"), header.index("Location")
    for i, (col, bad) in {10: (amount, "lots"), 20: (state, "Atlantis"),
                          30: (amount, "=1+1")}.items():
        cells = lines[i].split(",")
        cells[col] = bad
        lines[i] = ",".join(cells)
    src = tmp_path / "broken.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    home = tmp_path / "home"
    summary = run_pipeline(load_settings(home=home), [src])
    assert summary.exit_code == 0, summary.errors
    at = app(home, "data_quality")
    assert not at.exception
    rows = next(df.value for df in at.dataframe if "raw_text" in df.value.columns)
    assert sorted(rows["line"].tolist()) == [11, 21, 31]
    assert set(rows["column_name"]) == {"Purchase Amount (USD)", "Location"}
    assert "3 rejected rows, by reason:" in _texts(at, "caption")
    runs = next(df.value for df in at.dataframe if "stages" in df.value.columns)
    assert summary.run_id in runs["run_id"].tolist()
