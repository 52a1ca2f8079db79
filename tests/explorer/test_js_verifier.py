"""The results page's verification code, run in Node against the published vectors.

``tests/explorer/js/*.test.mjs`` import the very modules the page loads
(``explorer/static/js/verify/``) and check them against ``../shared/vectors``,
the files the Python verifier is checked against (``tests/vectors/``). Node's
WebCrypto gives them SHA-256 and Ed25519, as the browser's does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.helpers import ROOT, VECTORS

NODE = shutil.which("node") or shutil.which("nodejs")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="needs Node.js (.ci/run installs Debian's nodejs)"
)


def test_the_page_verifier_passes_every_vector_test():
    tests = sorted(str(p) for p in (ROOT / "tests/explorer/js").glob("*.test.mjs"))
    assert tests, "no JavaScript tests found"
    result = subprocess.run(
        [NODE, "--test", *tests],
        cwd=ROOT,
        env={**os.environ, "SAKSI_VECTORS": str(VECTORS)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    counts = dict(re.findall(r"^# (pass|fail|cancelled) (\d+)$", result.stdout, re.M))
    failed = [line for line in result.stdout.splitlines() if line.startswith("not ok")]
    assert result.returncode == 0, "\n".join(failed) + "\n" + result.stdout[-4000:]
    assert counts.get("fail") == "0"
    assert int(counts.get("pass", "0")) >= 28
