"""The monitor's configuration file (TOML), checked in full before anything runs.

Every key is documented in ``docs/monitor.example.toml``; unknown keys and
tables are refused (a typo must not silently switch a check off). Paths are
relative to the file's directory.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifier.errors import VerificationError
from verifier.note import VerifierKey
from verifier.record import parse_timestamp

__all__ = ["CanaryConfig", "ConfigError", "MonitorConfig", "Thresholds", "Window"]


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or wrong; says where.

    ``io``: a file could not be read (the file itself, or a key it names),
    as opposed to one that says something wrong.
    """

    def __init__(self, message: str, *, io: bool = False) -> None:
        super().__init__(message)
        self.io = io


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When the record checks alert (see the README, "The security monitor")."""

    max_revisions: int = 3
    reading_difference_votes: int = 50
    reading_difference_ratio: float = 0.10
    corrections_window_seconds: float = 1800.0
    corrections_min: int = 20
    corrections_share: float = 0.5
    key_max_regions: int = 20
    key_region_digits: int = 4
    stall_seconds: float = 300.0
    hold_seconds: float = 900.0


@dataclass(frozen=True, slots=True)
class Window:
    """A period of the election timetable and what may be written in it."""

    name: str
    start: dt.datetime
    end: dt.datetime
    schemas: frozenset[str]
    expect_results: bool = False

    def holds(self, when: dt.datetime, schema: str) -> bool:
        """Is ``schema`` written at ``when`` inside this window?"""
        return self.start <= when < self.end and schema in self.schemas


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    """The canary: a key granted the ``canary`` role, and how often it writes."""

    key: Path
    interval_seconds: float = 5.0
    passphrase_file: Path | None = None


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Everything ``saksi monitor`` needs."""

    log_url: str
    tiles_url: str
    log_key: VerifierKey
    origin: str
    state: Path
    witnesses: tuple[VerifierKey, ...] = ()
    min_witnesses: int = 0
    listen: tuple[str, int] = ("127.0.0.1", 9464)
    poll_seconds: float = 0.5
    workers: int = 2
    alert_log: str = "-"
    webhooks: tuple[str, ...] = ()
    webhook_timeout_seconds: float = 5.0
    webhook_max_backoff_seconds: float = 60.0
    dead_letter: Path | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    timetable: tuple[Window, ...] = ()
    canary: CanaryConfig | None = None


_TOP = {"log", "witnesses", "monitor", "webhook", "thresholds", "timetable", "canary"}


def load_config(path: Path) -> MonitorConfig:
    """Read and check ``path``.

    Raises:
        ConfigError: unreadable, not TOML, or a key missing, unknown or wrong.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}", io=True) from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not TOML: {e}") from e
    except RecursionError as e:
        raise ConfigError(f"{path} is not TOML: nested too deep") from e
    return parse_config(raw, path.parent)


def parse_config(raw: dict[str, Any], base: Path) -> MonitorConfig:
    """The configuration in ``raw`` (parsed TOML), paths relative to ``base``.

    Raises:
        ConfigError: a key missing, unknown or of the wrong kind.
    """
    _known(raw, _TOP, "the file")
    log = _table(raw, "log", required=True)
    _known(log, {"url", "tiles", "key", "origin"}, "[log]")
    url = _str(log, "url", "[log]")
    tiles = log.get("tiles", url.rstrip("/") + "/log")
    for name, value in (("url", url), ("tiles", tiles)):
        _url(value, f"[log] {name}")
    log_key = _vkey(base / _str(log, "key", "[log]"), "[log] key")
    origin = log.get("origin", log_key.name)
    if not isinstance(origin, str) or not origin:
        raise ConfigError("[log] origin must be a string")
    witnesses = _table(raw, "witnesses")
    _known(witnesses, {"keys", "min"}, "[witnesses]")
    keys = tuple(
        _vkey(base / p, "[witnesses] keys")
        for p in _list(witnesses, "keys", "[witnesses]", str)
    )
    minimum = _num(witnesses, "min", "[witnesses]", int, len(keys) and 1)
    if not 0 <= minimum <= len(keys):
        raise ConfigError(f"[witnesses] min must be 0 to {len(keys)}")
    monitor = _table(raw, "monitor", required=True)
    _known(
        monitor,
        {"state", "listen", "poll_seconds", "alert_log", "workers"},
        "[monitor]",
    )
    workers = _num(monitor, "workers", "[monitor]", int, min(os.cpu_count() or 1, 4))
    if not 0 <= workers <= 64:
        raise ConfigError("[monitor] workers must be 0 to 64")
    webhook = _table(raw, "webhook")
    _known(
        webhook,
        {"urls", "timeout_seconds", "max_backoff_seconds", "dead_letter"},
        "[webhook]",
    )
    urls = tuple(_list(webhook, "urls", "[webhook]", str))
    for hook in urls:
        _url(hook, "[webhook] urls")
    dead = webhook.get("dead_letter")
    if dead is not None and not isinstance(dead, str):
        raise ConfigError("[webhook] dead_letter must be a path")
    state = base / _str(monitor, "state", "[monitor]")
    return MonitorConfig(
        log_url=url.rstrip("/"),
        tiles_url=tiles.rstrip("/"),
        log_key=log_key,
        origin=origin,
        state=state,
        witnesses=keys,
        min_witnesses=minimum,
        listen=_listen(monitor.get("listen", "127.0.0.1:9464")),
        poll_seconds=_positive(monitor, "poll_seconds", "[monitor]", 0.5),
        workers=workers,
        alert_log=_alert_log(monitor, base),
        webhooks=urls,
        webhook_timeout_seconds=_positive(webhook, "timeout_seconds", "[webhook]", 5.0),
        webhook_max_backoff_seconds=_positive(
            webhook, "max_backoff_seconds", "[webhook]", 60.0
        ),
        dead_letter=(base / dead) if dead else state / "dead-letters.jsonl",
        thresholds=_thresholds(_table(raw, "thresholds")),
        timetable=_timetable(raw.get("timetable", [])),
        canary=_canary(_table(raw, "canary") if "canary" in raw else None, base),
    )


def _url(value: Any, where: str) -> None:  # noqa: ANN401 (parsed TOML)
    """An http(s) URL urllib can use (host, and a numeric port if any)."""
    ok = isinstance(value, str) and value.startswith(("http://", "https://"))
    if ok:
        try:
            parts = urllib.parse.urlsplit(value)
            ok = bool(parts.hostname) and (parts.port is None or parts.port > 0)
        except ValueError:
            ok = False
    if not ok:
        shown = repr(value[:80]) if isinstance(value, str) else "it"
        raise ConfigError(f"{where}: {shown} is not an http:// or https:// URL")


def _alert_log(monitor: dict[str, Any], base: Path) -> str:
    target = monitor.get("alert_log", "-")
    if not isinstance(target, str) or not target:
        raise ConfigError("[monitor] alert_log must be - (stdout) or a path")
    return target if target == "-" else str(base / target)


def _thresholds(table: dict[str, Any]) -> Thresholds:
    defaults = Thresholds()
    _known(table, set(Thresholds.__dataclass_fields__), "[thresholds]")
    values: dict[str, Any] = {}
    for name in Thresholds.__dataclass_fields__:
        default = getattr(defaults, name)
        kind = int if isinstance(default, int) else float
        values[name] = _num(table, name, "[thresholds]", kind, default)
        if not math.isfinite(values[name]) or values[name] < 0:
            raise ConfigError(f"[thresholds] {name} must be a number, not negative")
    if not 0 < values["corrections_share"] <= 1:
        raise ConfigError("[thresholds] corrections_share must be in (0, 1]")
    if values["key_region_digits"] not in (2, 4, 6, 10, 13):
        raise ConfigError("[thresholds] key_region_digits must be 2, 4, 6, 10 or 13")
    return Thresholds(**values)


def _timetable(items: Any) -> tuple[Window, ...]:  # noqa: ANN401 (parsed TOML)
    if not isinstance(items, list):
        raise ConfigError("[[timetable]] must be an array of tables")
    out = []
    for number, item in enumerate(items):
        where = f"[[timetable]] number {number + 1}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table")
        _known(item, {"name", "from", "to", "schemas", "expect_results"}, where)
        start, end = _time(item, "from", where), _time(item, "to", where)
        if end <= start:
            raise ConfigError(f"{where}: 'to' must be after 'from'")
        expect = item.get("expect_results", False)
        if not isinstance(expect, bool):
            raise ConfigError(f"{where}: expect_results must be true or false")
        out.append(
            Window(
                _str(item, "name", where),
                start,
                end,
                frozenset(_list(item, "schemas", where, str)),
                expect,
            )
        )
    return tuple(out)


def _canary(table: dict[str, Any] | None, base: Path) -> CanaryConfig | None:
    if table is None:
        return None
    _known(table, {"key", "interval_seconds", "passphrase_file"}, "[canary]")
    secret = table.get("passphrase_file")
    if secret is not None and not isinstance(secret, str):
        raise ConfigError("[canary] passphrase_file must be a path")
    return CanaryConfig(
        base / _str(table, "key", "[canary]"),
        _positive(table, "interval_seconds", "[canary]", 5.0),
        None if secret is None else base / secret,
    )


# -- small readers ---------------------------------------------------------------


def _known(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed))
        raise ConfigError(f"{where}: unknown key {unknown[0][:60]!r} (known: {known})")


def _table(raw: dict[str, Any], name: str, required: bool = False) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        if required:
            raise ConfigError(f"the [{name}] table is missing")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} {key} is missing or not a string")
    return value


def _list(table: dict[str, Any], key: str, where: str, kind: type) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        raise ConfigError(f"{where} {key} must be a list of {kind.__name__}s")
    return value


def _num(
    table: dict[str, Any], key: str, where: str, kind: type, default: float
) -> Any:  # noqa: ANN401 (an int or a float, as asked)
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} {key} must be a number")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"{where} {key} must be a whole number")
    try:
        float(value)  # every figure is also compared and scaled as a float
        return kind(value)
    except OverflowError as e:
        raise ConfigError(f"{where} {key} is out of range") from e


def _positive(table: dict[str, Any], key: str, where: str, default: float) -> float:
    value = float(_num(table, key, where, float, default))
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where} {key} must be a positive number")
    return value


def _time(table: dict[str, Any], key: str, where: str) -> dt.datetime:
    value = table.get(key)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        try:
            return value.astimezone(dt.UTC)
        except OverflowError as e:  # 0001-01-01T00:00:00+01:00
            raise ConfigError(f"{where}: {key} is out of range") from e
    if isinstance(value, str):
        try:
            return parse_timestamp(value, key)
        except (ValueError, VerificationError) as e:
            raise ConfigError(f"{where}: {e}") from e
    raise ConfigError(f"{where}: {key} must be a time with its zone (RFC 3339)")


def _vkey(path: Path, where: str) -> VerifierKey:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"{where}: cannot read {path}", io=True) from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{where}: {path} is not UTF-8 text") from e
    except ValueError as e:  # a NUL in the path
        raise ConfigError(f"{where}: {str(path)[:80]!r} is not a path") from e
    try:
        return VerifierKey.parse(text)
    except (ValueError, VerificationError) as e:
        raise ConfigError(f"{where}: {path} is not a verifier key: {e}") from e


def _listen(value: Any) -> tuple[str, int]:  # noqa: ANN401 (parsed TOML)
    if not isinstance(value, str):
        raise ConfigError("[monitor] listen must be HOST:PORT")
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if (
        not sep
        or not host
        or (":" in host and not bracketed)
        or not (port.isascii() and port.isdigit())
        or not 0 <= int(port) < 65536
    ):
        raise ConfigError(
            f"[monitor] listen {value[:60]!r} is not HOST:PORT ([::1]:PORT for IPv6)"
        )
    return host, int(port)
