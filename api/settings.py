"""API settings: limits and rate limits, from arguments or ``SAKSI_*`` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

__all__ = ["ApiSettings"]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Limits the API enforces before any work is done on a request.

    Attributes:
        max_body_bytes: largest single-envelope request body.
        max_batch_bytes: largest batch request body.
        max_batch: most envelopes in one batch request.
        client_rate, client_burst: requests a second (and burst) per client address.
        key_rate, key_burst: submissions a second (and burst) per signing key.
        max_in_flight: submissions waiting for the writer before new ones get 503.
        issued_at_skew: seconds a record's ``issued_at`` may be ahead of the
            server's clock.
        issued_at_max_age_days: days a record's ``issued_at`` may be behind it, at
            most (each schema has its own limit; 0 keeps the schemas' limits).
        header_timeout: seconds a client has to send a request's line and
            headers, from the connection (or the request) on; then it is closed.
        body_timeout: seconds a client has to send a request's body (408).
        keep_alive_timeout: seconds an idle keep-alive connection stays open.
        max_connections: open connections and requests in progress at most;
            beyond it new requests are answered 503 at once.
        ready_max_age: seconds within which the log must have signed a
            checkpoint (and, with witnesses, received a cosignature) for
            ``/readyz`` to answer 200.
    """

    max_body_bytes: int = 128 * 1024
    max_batch_bytes: int = 16 * 1024 * 1024
    max_batch: int = 1000
    client_rate: float = 2000.0
    client_burst: float = 4000.0
    key_rate: float = 200.0
    key_burst: float = 1000.0
    max_in_flight: int = 20_000
    issued_at_skew: float = 300.0
    issued_at_max_age_days: int = 0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 2048
    ready_max_age: float = 120.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ApiSettings:
        """Read ``SAKSI_MAX_BODY_BYTES`` and friends; unset ones keep defaults.

        Raises:
            ValueError: a variable that is not a number.
        """
        env = os.environ if environ is None else environ
        values: dict[str, float | int] = {}
        for spec in fields(cls):
            raw = env.get(f"SAKSI_{spec.name.upper()}")
            if raw is not None:
                kind = float if spec.type in ("float", float) else int
                try:
                    values[spec.name] = kind(raw)
                except ValueError as e:
                    raise ValueError(
                        f"SAKSI_{spec.name.upper()} must be a number, found {raw!r}"
                    ) from e
        return cls(**values)  # type: ignore[arg-type]
