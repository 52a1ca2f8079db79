"""The canary record: what a security monitor writes to time the log.

``monitor.canary/v1`` records carry nothing but a sequence number and the time
they were sent: ``saksi monitor`` writes one every few seconds with a key of
the ``canary`` role and measures how long each takes to reach a witnessed
checkpoint (the merge delay). Observers see them like any other record; the
results ignore them.
"""

from __future__ import annotations

from verifier.body_schema import Int, Obj, Schema, Str

__all__ = ["CANARY", "canary_subject"]

CANARY = Schema(
    name="monitor.canary/v1",
    subject=r"canary/[0-9a-f]{64}/[0-9]{1,16}",
    description="a monitor's canary: a sequence number and when it was sent",
    max_age_days=1,
    body=Obj({"sequence": Int(0, 10**16 - 1), "sent_at": Str(24, 24)}),
)


def canary_subject(keyid: str, sequence: int) -> str:
    """``canary/<keyid>/<sequence>``: each canary is its own subject."""
    return f"canary/{keyid}/{sequence}"
