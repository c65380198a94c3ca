"""Print an HTML file to PDF with headless Chromium (Debian package ``chromium``), so the
PDF is the same content and layout as the HTML report, with its print stylesheet."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import PurchasePatternsError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(PurchasePatternsError):
    """The PDF could not be printed (no browser, or the browser failed)."""


def find_chromium(configured: Path | None = None) -> str | None:
    """The configured executable, or the first Chromium/Chrome on PATH."""
    if configured is not None:
        return str(configured) if Path(configured).exists() else shutil.which(str(configured))
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path, *, chromium: Path | None = None,
              timeout: int = 120) -> Path:
    """Print ``html`` to ``pdf``; raises :class:`PdfError` with one line when it cannot."""
    exe = find_chromium(chromium)
    if exe is None:
        raise PdfError("no Chromium found to print the PDF (install the Debian package "
                       "'chromium' or set PURCHASE_PATTERNS_REPORT__CHROMIUM)")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp_pdf = pdf.with_name(f".{pdf.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="pp-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--no-default-browser-check",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={tmp_pdf}", html.resolve().as_uri()]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,  # noqa: S603
                                 check=False)
        except subprocess.TimeoutExpired:
            tmp_pdf.unlink(missing_ok=True)
            raise PdfError(f"Chromium did not print {html.name} within {timeout}s") from None
    if res.returncode != 0 or not tmp_pdf.exists() or tmp_pdf.stat().st_size == 0:
        tmp_pdf.unlink(missing_ok=True)
        last = (res.stderr or res.stdout or "").strip().splitlines()
        raise PdfError(f"Chromium could not print {html.name} (exit {res.returncode}"
                       f"{': ' + last[-1][:200] if last else ''})")
    tmp_pdf.replace(pdf)
    return pdf
