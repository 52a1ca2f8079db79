"""What a provisioning run decides per region, from its key file and the registry."""

from __future__ import annotations

import datetime as dt

import pytest

from cli.provisioning import Region, admin_problems, file_name, plan
from keys import Ed25519Signer, KdfProfile
from keys.keyfile import KeyFileBatch

PASS = b"provisioning passphrase"
NOW = dt.datetime(2024, 2, 14, 13, tzinfo=dt.UTC)


def _signer(n: int) -> Ed25519Signer:
    return Ed25519Signer(f"k{n}", bytes([n]) * 32)


def _grant(signer, role, scope, *, revoked_at=None, expires_at=None, at=5):
    return {
        "keyid": signer.keyid,
        "role": role,
        "scope": scope,
        "granted_at": at,
        "revoked_at": revoked_at,
        "expires_at": expires_at,
    }


@pytest.fixture
def batch():
    return KeyFileBatch(PASS, KdfProfile.INTERACTIVE)


def test_each_region_is_decided_from_its_file_and_its_grant(tmp_path, batch):
    regions = [Region(c, "district") for c in ("310101", "310102", "310103")]
    regions += [Region("310104", "district"), Region("310105", "district")]
    regions.append(Region("", "national"))
    granted, revoked, other, ungranted = (_signer(n) for n in (1, 2, 3, 4))
    for region, signer in zip(
        regions[:4], (granted, revoked, other, ungranted), strict=True
    ):
        batch.write(tmp_path / file_name(region.code), signer)
    (tmp_path / "310105.key.tmp").write_text("half written")  # a stopped run
    registry = {
        "keys": [
            _grant(granted, "district", "310101"),
            _grant(revoked, "district", "310102", revoked_at=9),
            _grant(other, "regency", "3101"),
        ]
    }

    work = plan(tmp_path, regions, registry, batch)

    assert list(work.done) == ["310101"]
    assert work.done["310101"]["keyid"] == granted.keyid
    assert work.done["310101"]["granted_at"] == 5
    problems = {c["region"]: c["problem"] for c in work.conflicts}
    assert "revoked at entry 9" in problems["310102"]
    assert "granted role regency scope 3101" in problems["310103"]
    assert [(r.code, s.keyid) for r, s in work.to_grant] == [
        ("310104", ungranted.keyid)
    ]
    assert work.new == [Region("310105", "district"), Region("", "national")]
    assert not (tmp_path / "310105.key.tmp").exists()


def test_a_file_that_does_not_open_is_a_conflict_not_replaced(tmp_path, batch):
    KeyFileBatch(b"another passphrase", KdfProfile.INTERACTIVE).write(
        tmp_path / "310101.key", _signer(1)
    )
    before = (tmp_path / "310101.key").read_bytes()
    work = plan(tmp_path, [Region("310101", "district")], {"keys": []}, batch)
    assert work.new == []
    assert work.to_grant == []
    assert "wrong passphrase" in work.conflicts[0]["problem"]
    assert (tmp_path / "310101.key").read_bytes() == before


def test_file_names_are_what_results_recap_opens():
    assert file_name("3101011001") == "3101011001.key"
    assert file_name("") == "national.key"


def test_admin_problems_name_each_key_that_cannot_grant():
    ok, stranger, tps, revoked, expired = (_signer(n) for n in range(10, 15))
    registry = {
        "keys": [
            _grant(ok, "admin", ""),
            _grant(tps, "tps", "31"),
            _grant(revoked, "admin", "", revoked_at=3),
            _grant(expired, "admin", "", expires_at="2024-02-01T00:00:00.000Z"),
        ]
    }
    assert admin_problems(registry, [ok], NOW) == []
    problems = admin_problems(registry, [ok, stranger, tps, revoked, expired], NOW)
    assert len(problems) == 4
    assert "not in this log's registry" in problems[0]
    assert "role tps" in problems[1]
    assert "revoked at entry 3" in problems[2]
    assert "expired" in problems[3]
