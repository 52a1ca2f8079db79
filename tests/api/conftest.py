"""An API over a fresh record log (genesis logged), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.recordlog import RecordLog


class Api:
    def __init__(self, log: RecordLog, settings: ApiSettings) -> None:
        self.log = log
        self.client = TestClient(create_app(log.service, settings))

    def post(self, payload: bytes, signers, path="/v1/entries"):
        from tests.recordlog import envelope_bytes

        return self.client.post(
            path,
            content=envelope_bytes(payload, signers),
            headers={"content-type": "application/json"},
        )

    @property
    def size(self) -> int:
        return self.log.ledger.size


@pytest.fixture
def make_api(db_url, signer):
    opened: list[RecordLog] = []

    def make(**settings) -> Api:
        log = RecordLog(db_url, signer)
        opened.append(log)
        return Api(log, ApiSettings(**settings))

    yield make
    for log in opened:
        log.close()


@pytest.fixture
def api(make_api) -> Api:
    return make_api()
