"""The report's PDF: headless Chromium's print-to-PDF of the report's own HTML.

Chromium (Debian's ``chromium``) opens the HTML file from disk with networking
off and every background service disabled, in a throwaway profile, and prints
it on A4 with the page's own CSS. Chromium embeds (subsets of) the fonts the
page uses, so the PDF reads the same anywhere. As root (containers, CI) its
sandbox cannot start, so it runs without one there: it reads only our page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PdfError", "chromium", "print_pdf"]

TIMEOUT = 300.0  # seconds for one report


class PdfError(Exception):
    """The PDF could not be made (the message says why and what to install)."""


def chromium() -> str | None:
    """The Chromium executable ($SAKSI_CHROMIUM, or chromium on PATH)."""
    found = os.environ.get("SAKSI_CHROMIUM") or shutil.which("chromium")
    return found or shutil.which("chromium-browser")


def print_pdf(html: Path, pdf: Path, timeout: float = TIMEOUT) -> None:
    """Print the report at ``html`` to ``pdf``.

    Raises:
        PdfError: no Chromium, or it failed or timed out.
    """
    browser = chromium()
    if browser is None:
        raise PdfError(
            "no Chromium to print the PDF with: install Debian's chromium "
            "(apt install chromium), or pass --no-pdf"
        )
    with tempfile.TemporaryDirectory(prefix="saksi-report-") as profile:
        argv = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--proxy-server=127.0.0.1:9",  # nothing leaves, should the page ask
            "--proxy-bypass-list=<-loopback>",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            html.resolve().as_uri(),
        ]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")
        try:
            done = subprocess.run(  # noqa: S603
                argv,
                capture_output=True,
                timeout=timeout,
                check=False,
                env={**os.environ, "HOME": profile},
            )
        except subprocess.TimeoutExpired as e:
            raise PdfError(f"Chromium did not print the PDF in {timeout:.0f} s") from e
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise PdfError(f"Chromium failed to print the PDF: {' / '.join(tail)}")
