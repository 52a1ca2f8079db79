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


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 (an OS-chosen port), in a thread."""

    def __init__(self, app) -> None:
        import threading
        import time

        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(api):
    server = LiveServer(api.client.app)
    yield api, server.url
    server.stop()
