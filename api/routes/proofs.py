"""Inclusion and consistency proofs, always with the checkpoint they prove against."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from api.deps import Entries, Reader
from api.errors import ProblemError
from api.schemas import ConsistencyModel, InclusionModel
from verifier.tlog_proof import TlogProof, format_tlog_proof

__all__ = ["router"]

router = APIRouter(prefix="/v1/proofs", tags=["proofs"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "problem+json"} for code in (400, 404)
}


@router.get(
    "/inclusion",
    response_model=InclusionModel,
    responses=_ERRORS,
    summary="Inclusion proof by index or by leaf hash",
)
async def inclusion(
    reader: Reader,
    index: int | None = Query(None, ge=0),
    leaf_hash: str | None = Query(None, pattern="^[0-9a-f]{64}$"),
) -> JSONResponse:
    """The entry named by ``index`` or ``leaf_hash`` (or both, if they agree).

    The proof is to the latest signed checkpoint. Naming no entry, or two that
    differ, finds nothing to prove: 404.
    """
    if index is None and leaf_hash is None:
        raise ProblemError("not-found", "name an entry: index=N or leaf_hash=HEX")
    current = reader.latest()
    if index is None:
        index = reader.index_of_leaf(bytes.fromhex(str(leaf_hash)))
    if index >= current.size:
        raise ProblemError(
            "out-of-range", f"entry {index} is beyond size {current.size}"
        )
    leaf = reader.leaf_hash(index)
    if leaf_hash is not None and leaf.hex() != leaf_hash:
        raise ProblemError("not-found", f"entry {index} has another leaf hash")
    proof = reader.inclusion_proof(index, current.size)
    return JSONResponse(
        {
            "index": index,
            "tree_size": current.size,
            "leaf_hash": leaf.hex(),
            "inclusion_proof": [h.hex() for h in proof],
            "checkpoint": current.note.decode(),
        }
    )


@router.get(
    "/consistency",
    response_model=ConsistencyModel,
    responses=_ERRORS,
    summary="Consistency proof from an old tree size to a newer one",
)
async def consistency(
    reader: Reader,
    old: int = Query(..., ge=1),
    new: int | None = Query(None, ge=1),
) -> JSONResponse:
    """``new`` defaults to the latest signed size (the returned checkpoint's)."""
    current = reader.latest()
    new_size = current.size if new is None else new
    if not old <= new_size <= current.size:
        raise ProblemError(
            "out-of-range",
            f"need 1 <= old <= new <= {current.size}, found {old}, {new_size}",
        )
    proof = reader.consistency_proof(old, new_size)
    return JSONResponse(
        {
            "old_size": old,
            "new_size": new_size,
            "consistency_proof": [h.hex() for h in proof],
            "checkpoint": current.note.decode(),
        }
    )


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **_ERRORS},
    summary="A self-contained C2SP tlog-proof of one entry, for auditors",
)
async def export(
    reader: Reader, entries: Entries, index: int = Query(..., ge=0)
) -> Response:
    """One entry's proof file, checked offline by ``saksi-verify proof FILE``.

    The entry itself (in ``extra``), its inclusion proof and the published
    checkpoint with its cosignatures.
    """
    current = reader.current()
    note, size = current.note, current.size
    if index >= size:
        raise ProblemError(
            "out-of-range",
            f"entry {index} is not under the published checkpoint (size {size}) yet",
        )
    proof = TlogProof(
        index,
        tuple(reader.inclusion_proof(index, size)),
        note,
        entries.entry(index).data,
    )
    return Response(
        format_tlog_proof(proof),
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="entry-{index}.tlog-proof"'
        },
    )
