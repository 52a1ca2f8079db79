"""Wire models for the OpenAPI document (responses are built from plain dicts).

Hashes are lowercase hex; the checkpoint is the signed note as text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "BatchResultModel",
    "ConsistencyModel",
    "EntryModel",
    "HistoryModel",
    "InclusionModel",
    "KeyModel",
    "KeysModel",
    "ProblemModel",
    "ReceiptModel",
]


class ProblemModel(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["/problems/stale-revision"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    current_revision: int | None = None
    current_payload_hash: str | None = None
    path: str | None = None


class ReceiptModel(BaseModel):
    """Proof that a record is in the log: verify the proof against the checkpoint."""

    index: int
    leaf_hash: str
    tree_size: int
    checkpoint: str
    inclusion_proof: list[str]
    duplicate: bool
    entry: str = Field(description="base64 of the exact entry bytes (the leaf)")


class BatchResultModel(BaseModel):
    """One result per envelope, in request order."""

    results: list[dict[str, Any]] = Field(
        description="{status, receipt} or {status, problem} per envelope"
    )


class EntryModel(BaseModel):
    """A logged entry, decoded."""

    index: int
    leaf_hash: str
    logged_at: str
    envelope: dict[str, Any]
    record: dict[str, Any]
    signers: list[str]


class InclusionModel(BaseModel):
    """An inclusion proof of ``index`` in the tree of ``tree_size``."""

    index: int
    tree_size: int
    leaf_hash: str
    inclusion_proof: list[str]
    checkpoint: str


class ConsistencyModel(BaseModel):
    """A consistency proof between two tree sizes."""

    old_size: int
    new_size: int
    consistency_proof: list[str]
    checkpoint: str


class HistoryModel(BaseModel):
    """Every revision of a subject, each with its inclusion proof."""

    subject: str
    tree_size: int
    checkpoint: str
    revisions: list[dict[str, Any]]


class KeyModel(BaseModel):
    """A key's grant."""

    keyid: str
    public_key: str
    role: str
    scope: str
    holder: str
    granted_at: int
    expires_at: str | None
    revoked_at: int | None


class KeysModel(BaseModel):
    """The key registry as of a tree size."""

    tree_size: int
    threshold: int
    keys: list[KeyModel]
