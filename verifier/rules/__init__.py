"""The election's public rules: pure checks the server and every verifier share.

``state`` decides what a record may say as of its position in the log (region
registry, candidate lists, who signs which stage and level) and refuses what no
form can say; ``arithmetic`` computes the flags of what a form says that does
not add up, which are reported, never refused; ``chain`` ties records
together (subject chains, a recap's children).
"""

from verifier.rules.arithmetic import (
    Flag,
    TallyRules,
    add_totals,
    differences,
    fold_totals,
    recap_flags,
    sum_of,
    tally_flags,
    totals_of,
)
from verifier.rules.chain import ChainBreak, chain_break, unlogged_child
from verifier.rules.state import (
    ElectionState,
    OutsideRegistry,
    UnknownCandidate,
    UnknownChild,
    authorize_election,
    ballot_of,
    recap_children,
)

__all__ = [
    "ChainBreak",
    "ElectionState",
    "Flag",
    "OutsideRegistry",
    "TallyRules",
    "UnknownCandidate",
    "UnknownChild",
    "add_totals",
    "authorize_election",
    "ballot_of",
    "chain_break",
    "differences",
    "fold_totals",
    "recap_children",
    "recap_flags",
    "sum_of",
    "tally_flags",
    "totals_of",
    "unlogged_child",
]
