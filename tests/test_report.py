"""The stakeholder report: self-contained HTML, a PDF whose pages are opened as images and
read back as text, filters through the CLI, and honest sections for each kind of data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import FULL_STAGES
from PIL import Image
from test_cli import cli

BUILT = FULL_STAGES
SECTIONS = ("summary", "quality", "supports", "eda", "segments", "trends", "predictions",
            "recommendations", "methods")

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("pdftotext") and shutil.which("chromium")),
    reason="needs chromium and poppler-utils (make test installs them)")


def _report(home: Path) -> Path:
    [folder] = [p.parent for p in (home / "reports").glob("*/report.html")]
    return folder


def pdf_text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                         text=True, check=True)
    return re.sub(r"[ \t]+", " ", out.stdout)


def pdf_pages(pdf: Path, out: Path) -> list[Path]:
    """Every page as a PNG (40 dpi) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(out / "page")], check=True)
    return sorted(out.glob("page-*.png"))


def ink(page: Path) -> float:
    """Share of pixels that are not (near) white."""
    a = np.asarray(Image.open(page).convert("L"))
    return float((a < 235).mean())


@pytest.mark.parametrize("name", ["synthetic", "kaggle", "cdnow_master"])
def test_report_pdf_pages_are_not_blank(name, built_home, tmp_path):
    folder = _report(built_home(name, BUILT))
    pages = pdf_pages(folder / "report.pdf", tmp_path / "pages")
    assert 6 <= len(pages) <= 30
    inks = [ink(p) for p in pages]
    assert min(inks) > 0.003, inks  # no blank page (a short section's page is ~0.01)
    assert sum(i > 0.05 for i in inks) >= len(pages) // 2  # most carry tables or figures
    pdf = folder / "report.pdf"
    for i in range(1, len(pages) + 1):
        text = subprocess.run(["pdftotext", "-f", str(i), "-l", str(i), str(pdf), "-"],
                              capture_output=True, text=True, check=True).stdout
        assert len(text.strip()) >= 40 or inks[i - 1] > 0.05, (i, text)  # words or figures
    first = Image.open(pages[0])
    assert first.size[0] < first.size[1]  # A4 portrait


def test_synthetic_report_content(built_home):
    home = built_home("synthetic", BUILT)
    folder = _report(home)
    html = (folder / "report.html").read_text(encoding="utf-8")
    # self-contained: every figure embedded, nothing fetched
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<link" not in html and "<script" not in html
    assert html.count("data:image/png;base64,") >= 10
    for section in SECTIONS:
        assert f'id="{section}"' in html
    text = pdf_text(folder / "report.pdf")
    for words in ("Customer purchase patterns", "1. Summary", "2. Data and data quality",
                  "4. Exploratory analysis", "5. Customer segments",
                  "6. Trends, peaks and preferences", "8. Recommendations", "9. Methods",
                  "Prepare for the Nov-Dec peak", "Champions", "Outerwear",
                  "Kruskal-Wallis", "7. Predictions", "customers in scope have a prediction",
                  "bgnbd_gamma_gamma"):
        assert words in text, words
    cust = pd.read_csv(home / "input" / "synthetic.csv")["Customer ID"].nunique()
    assert f"{cust:,}" in text.split("Contents")[0]  # the cover's customer count


def test_kaggle_report_shows_no_recency(built_home):
    text = pdf_text(_report(built_home("kaggle", BUILT)) / "report.pdf")
    assert "snapshot without purchase dates" in text
    assert "not RFM" in text and "Frequent, high spend" in text
    for absent in ("Champions", "Hibernating", "Days since last purchase", "Seasonal index"):
        assert absent not in text, absent
    assert "no purchase dates" in text  # the skipped analyses say why


def test_filtered_report_from_the_cli(built_home, home_copy, kaggle_csv):
    home = home_copy(built_home("kaggle", BUILT))
    res = cli("--json", "analyze", home=home)
    assert res.returncode == 0, res.stderr
    stage = json.loads(res.stdout)["stages"][0]
    assert stage["name"] == "analyze" and stage["status"] == "ran"
    detail = {a["analysis"]: a for a in stage["detail"]["analyses"]}
    assert detail["rfm_segments"]["status"] == "skipped"
    assert "no purchase dates" in detail["rfm_segments"]["reason"]

    res = cli("--json", "report", "--filter", "state=california", "--filter",
              "category=Footwear", home=home)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    [rep] = summary["stages"]
    assert rep["name"] == "report" and rep["status"] == "ran" and rep["reason"] == ""
    assert rep["detail"]["filters"] == {"category": ["Footwear"], "state": ["California"]}
    assert Path(rep["detail"]["html"]).parent.name == summary["run_id"]
    text = pdf_text(Path(rep["detail"]["pdf"]))
    assert "Category: Footwear; State: California" in text
    raw = pd.read_csv(kaggle_csv)
    want = raw[(raw["Location"] == "California") & (raw["Category"] == "Footwear")]
    cover = text.split("Contents")[0]
    assert f"${want['Purchase Amount (USD)'].sum():,.0f}" in cover
    assert re.search(rf"(^|\s){len(want):,}\s", cover)  # customers = lines: one row each
    assert "Data quality describes the whole load" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--filter", "colour=red"], "unknown filter key 'colour'"),
    (["--filter", "category=Toys"], "category=Toys: unknown value"),
    (["--filter", "date_to=2024-01-01"], "this data has no purchase dates"),
])
def test_bad_filters_exit_2_with_one_line(built_home, home_copy, args, message):
    res = cli("report", *args, home=home_copy(built_home("kaggle", BUILT)))
    assert res.returncode == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in res.stderr + res.stdout


def test_report_before_analyze_is_a_usage_error(built_home, home_copy):
    import duckdb

    home = home_copy(built_home("kaggle", BUILT))
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("drop schema analytics cascade")
    con.close()
    res = cli("report", home=home)
    assert res.returncode == 2
    assert "no insights yet: run 'purchase-patterns analyze'" in res.stderr


def test_without_chromium_the_html_is_built_and_the_missing_pdf_said(built_home, home_copy,
                                                                     tmp_path):
    from purchase_patterns.report.build import build_report
    from purchase_patterns.settings import load_settings

    home = home_copy(built_home("kaggle", BUILT))
    settings = load_settings(home=home, report={"chromium": str(tmp_path / "no-chromium")})
    res = build_report(settings, "no-pdf-test")
    assert res.pdf is None and res.html.exists()
    assert res.pdf_error.startswith("no Chromium found to print the PDF")
    assert not (res.html.parent / "report.pdf").exists()
