"""The election's read model: results, provenance, completeness and corrections.

Read from a record log's read side (``ledger.read``): every number with the
proven entry that says it. ``ResultsReader`` answers a region's results and
corrections; ``ResultsIndex`` keeps what only many entries say together
(stale recaps, corrections by region).
"""

from __future__ import annotations

from results.index import ResultsIndex
from results.reader import ResultsReader

__all__ = ["ResultsIndex", "ResultsReader"]
