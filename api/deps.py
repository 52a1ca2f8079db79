"""Request-scoped access to the app's collaborators (no globals).

Routes depend on the parts they use: the log reader (``Reader``), proven
decoded entries (``Entries``), the registries (``Registries``), the results
(``Results``) and, for writes, the writer (``api.routes.entries``). The
providers are ``async`` on purpose: FastAPI runs a plain function dependency in
a worker thread, which costs a thread hop per request.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from api.errors import ProblemError
from api.ratelimit import RateLimiter
from api.settings import ApiSettings
from ledger.health import LogHealth
from ledger.read.entries import EntryReader
from ledger.read.reader import LogReader
from ledger.read.registry import RegistryReader
from ledger.writer import Writer
from results import ResultsIndex, ResultsReader
from verifier.note import VerifierKey

__all__ = [
    "Entries",
    "Limits",
    "Log",
    "Reader",
    "Registries",
    "Results",
    "ServedLog",
    "Settings",
    "writer_of",
]


class ServedLog(Protocol):
    """What the API serves: a log's read side, and its writer where it has one.

    ``ledger.recordlog.RecordLog`` (writes and reads) and ``ReadOnlyLog``
    (reads only, ``writer`` None) are both.
    """

    origin: str
    verifier_key: VerifierKey
    reader: LogReader
    entries: EntryReader
    registry: RegistryReader

    @property
    def writer(self) -> Writer | None:
        """The writer; None in a read-only process."""
        ...

    def witness_status(self) -> list[dict[str, object]]:
        """Each witness's state (empty without witnesses)."""
        ...

    def health(self) -> LogHealth:
        """A snapshot for readiness and metrics (no database read)."""
        ...


def writer_of(log: ServedLog) -> Writer:
    """The log's writer, or the problem a read-only server answers writes with.

    Raises:
        ProblemError: ``read-only``: this process serves reads only.
    """
    writer = log.writer
    if writer is None:
        raise ProblemError(
            "read-only", "this server only reads the log: send writes to its writer"
        )
    return writer


async def _log(request: Request) -> ServedLog:
    log: ServedLog = request.app.state.log
    return log


async def _reader(request: Request) -> LogReader:
    log: ServedLog = request.app.state.log
    return log.reader


async def _entries(request: Request) -> EntryReader:
    log: ServedLog = request.app.state.log
    return log.entries


async def _registries(request: Request) -> RegistryReader:
    log: ServedLog = request.app.state.log
    return log.registry


async def _results(request: Request) -> ResultsReader:
    log: ServedLog = request.app.state.log
    index: ResultsIndex = request.app.state.results_index
    return ResultsReader(log.entries, log.registry.election(), index)


async def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


class RateLimits:
    """The two limiters of one app."""

    def __init__(self, settings: ApiSettings) -> None:
        self.client = RateLimiter(settings.client_rate, settings.client_burst)
        self.key = RateLimiter(settings.key_rate, settings.key_burst)


async def _limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.limits
    return limits


Log = Annotated[ServedLog, Depends(_log)]
Reader = Annotated[LogReader, Depends(_reader)]
Entries = Annotated[EntryReader, Depends(_entries)]
Registries = Annotated[RegistryReader, Depends(_registries)]
Results = Annotated[ResultsReader, Depends(_results)]
Settings = Annotated[ApiSettings, Depends(_settings)]
Limits = Annotated[RateLimits, Depends(_limits)]
