"""The small election log the audit tests tamper with."""

from __future__ import annotations

import pytest

from tests.unit.verifier.test_audit import Built


@pytest.fixture
def built(tmp_path, signer):
    made = Built(tmp_path, signer)
    yield made
    made.close()
