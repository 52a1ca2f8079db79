"""The default authorization policy written into a new log's genesis record.

Roles map to the schemas they may write and to the length of the region scope a
key of that role is granted (province 2 digits, regency 4, district 6, village 10,
polling station 13, national 0). The policy is data in the log: an operator may
start a log with another one, and observers replay whatever the genesis says.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_POLICY", "ROLES"]

_TALLY = "results.tally/v1"
_RECAP = "results.recap/v1"

ROLES: dict[str, dict[str, Any]] = {
    # A station's officers sign its own forms (scope: the 13-digit station); the
    # commission's reading system signs for the region it reads (any prefix).
    "tps": {"schemas": [_TALLY], "scope_lengths": [0, 2, 4, 6, 10, 13]},
    "village": {"schemas": [_RECAP], "scope_lengths": [10]},
    "district": {"schemas": [_RECAP, _TALLY], "scope_lengths": [6]},
    "regency": {"schemas": [_RECAP, _TALLY], "scope_lengths": [4]},
    "province": {"schemas": [_RECAP, _TALLY], "scope_lengths": [2]},
    "national": {"schemas": [_RECAP, _TALLY], "scope_lengths": [0]},
    "voters": {"schemas": ["voters.change/v1"], "scope_lengths": [0, 2, 4, 6]},
    "parties": {"schemas": ["parties.change/v1"], "scope_lengths": [0]},
    "candidates": {"schemas": ["candidates.change/v1"], "scope_lengths": [0, 2, 4, 6]},
    "admin": {
        "schemas": ["keys.grant/v1", "keys.revoke/v1", "regions.registry/v1"],
        "scope_lengths": [0],
    },
    # An auditor logs sampling plans (audit.plan/v1) for the region it
    # audits: the plan is public before the seed that draws its sample.
    "auditor": {"schemas": ["audit.plan/v1"], "scope_lengths": [0, 2, 4]},
    # A security monitor's canary key (saksi monitor): it writes nothing but
    # monitor.canary/v1 records, to time the log.
    "canary": {"schemas": ["monitor.canary/v1"], "scope_lengths": [0]},
}

DEFAULT_POLICY: dict[str, Any] = {"roles": ROLES}
