"""Request-scoped access to the app's collaborators (no globals).

The providers are ``async`` on purpose: FastAPI runs a plain function dependency
in a worker thread, which costs a thread hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.ratelimit import RateLimiter
from api.settings import ApiSettings
from ledger.service import RecordService

__all__ = ["Limits", "Service", "Settings"]


async def _service(request: Request) -> RecordService:
    service: RecordService = request.app.state.service
    return service


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


Service = Annotated[RecordService, Depends(_service)]
Settings = Annotated[ApiSettings, Depends(_settings)]
Limits = Annotated[RateLimits, Depends(_limits)]
