"""The record index's search (``find_records``) on SQLite and PostgreSQL.

What the exporter plans a bundle from: every row it returns must be what a
plain filter over all rows returns, in entry order, for each kind of query
(a substring of the subject, subjects, schemas, index ranges, the ``also``
schemas), with LIKE's own characters in the substring taken literally.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from ledger.storage.rows import leaf_key
from ledger.storage.schema import records
from tests.conftest import create_log

SUBJECTS = [
    "log/genesis",
    "keys/" + "11" * 32,
    "regions/110101",
    "results/ppwp/1101010001001",
    "results/ppwp/3211010001001",
    "results/dpr/1101010001002",
    "recaps/ppwp/11",
    "recaps/ppwp/national",
    "voters/3201010001001/11",
    "odd/11%x",
    "odd/11_x",
    "odd/1/1",
]
SCHEMAS = ["a/v1", "b/v1", "ctx/v1"]


def _rows() -> list[tuple[int, str, int, str, bytes]]:
    rows = []
    for i in range(300):
        subject = SUBJECTS[i % len(SUBJECTS)]
        digest = hashlib.sha256(i.to_bytes(4, "big")).digest()
        rows.append((i, subject, i // len(SUBJECTS), SCHEMAS[i * 7 % 3], digest))
    return rows


def test_every_query_returns_what_a_plain_filter_does(db_url, signer):
    storage = create_log(db_url, signer)
    rows = _rows()
    try:
        with storage._engine.begin() as conn:
            conn.execute(
                sa.insert(records),
                [
                    {
                        "idx": i,
                        "subject": s,
                        "revision": r,
                        "schema_name": c,
                        "payload_key": leaf_key(h),
                        "payload_hash": h,
                    }
                    for i, s, r, c, h in rows
                ],
            )
        queries = [
            {"containing": "/11"},
            {"containing": "/11", "also": ["ctx/v1"]},
            {"containing": "11%"},
            {"containing": "11_"},
            {"containing": "/11", "start": 50, "also": ["ctx/v1"]},
            {"containing": "/32", "schemas": ["a/v1"], "also": ["ctx/v1"]},
            {"containing": "/11", "subjects": ["recaps/ppwp/11", "odd/11%x"]},
            {"subjects": ["log/genesis"], "also": ["b/v1"]},
            {"schemas": ["a/v1"], "start": 120},
            {},
        ]
        for query in queries:
            for end in (300, 170, 0):
                found = [
                    (r.index, r.subject, r.revision, r.schema, r.payload_hash)
                    for r in storage.find_records(end, batch=7, **query)
                ]
                assert found == _plain(rows, end, **query), (query, end)
    finally:
        storage.close()


def _plain(rows, end, *, start=0, subjects=(), schemas=(), containing=None, also=()):
    out = []
    for row in rows:
        index, subject, _, schema, _ = row
        if index >= end:
            continue
        matches = (
            index >= start
            and (not subjects or subject in subjects)
            and (not schemas or schema in schemas)
            and (containing is None or containing in subject)
        )
        if matches or schema in also:
            out.append(row)
    return out
