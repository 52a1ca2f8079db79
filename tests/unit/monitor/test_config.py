"""The monitor's TOML configuration (``monitor.config``): the documented example
parses, paths are relative to the file, defaults are the documented ones, and
every kind of mistake is a ``ConfigError`` naming the key or table at fault.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from keys import Ed25519Signer
from monitor.config import ConfigError, Thresholds, Window, load_config, parse_config
from tests.helpers import ROOT

EXAMPLE = ROOT / "docs" / "monitor.example.toml"
LOG_KEY = Ed25519Signer("kpu.example/pemilu2024", bytes(32)).verifier_key
WITNESS_KEYS = [Ed25519Signer(f"witness{i}.example", bytes([i]) * 32) for i in (1, 2)]

MINIMAL = """\
[log]
url = "http://127.0.0.1:8080"
key = "log.vkey"

[monitor]
state = "state"
"""


def _keys(where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    (where / "log.vkey").write_text(str(LOG_KEY) + "\n", encoding="utf-8")
    for i, witness in enumerate(WITNESS_KEYS, 1):
        (where / f"w{i}.vkey").write_text(
            str(witness.verifier_key) + "\n", encoding="utf-8"
        )


def _raw() -> dict[str, Any]:
    """A parsed configuration that is valid, every table present."""
    return {
        "log": {"url": "http://127.0.0.1:8080", "key": "log.vkey"},
        "witnesses": {"keys": ["w1.vkey"], "min": 1},
        "monitor": {"state": "state", "poll_seconds": 1.0},
        "webhook": {"urls": ["http://127.0.0.1:9093/api/v2/alerts"]},
        "thresholds": {"max_revisions": 3},
        "timetable": [
            {
                "name": "counting",
                "from": "2024-02-14T06:00:00.000Z",
                "to": "2024-03-20T17:00:00.000Z",
                "schemas": ["results.tally/v1"],
                "expect_results": True,
            }
        ],
        "canary": {"key": "canary.key"},
    }


def _with(path: str, value: Any) -> dict[str, Any]:
    """``_raw()`` with ``path`` ("table.key", "table", or "timetable.0.key") set;
    the value ``...`` deletes it."""
    raw = _raw()
    *parents, last = path.split(".")
    target: Any = raw
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    index: Any = int(last) if isinstance(target, list) else last
    if value is ...:
        del target[index]
    else:
        target[index] = value
    return raw


@pytest.fixture
def base(tmp_path: Path) -> Path:
    _keys(tmp_path)
    return tmp_path


def test_the_raw_base_used_below_is_valid(base):
    config = parse_config(_raw(), base)
    assert config.min_witnesses == 1
    assert config.webhooks == ("http://127.0.0.1:9093/api/v2/alerts",)
    assert [w.name for w in config.timetable] == ["counting"]


# --- the documented example ---------------------------------------------------------


def test_documented_example_parses_with_its_key_beside_it(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "monitor.toml")
    (tmp_path / "log.vkey").write_text(str(LOG_KEY) + "\n", encoding="utf-8")
    config = load_config(tmp_path / "monitor.toml")
    assert config.log_url == "http://127.0.0.1:8080"
    assert config.tiles_url == "http://127.0.0.1:8080/log"
    assert config.log_key == LOG_KEY
    assert config.origin == LOG_KEY.name  # default: the key's name
    assert config.state == tmp_path / "monitor-state"
    assert config.listen == ("127.0.0.1", 9464)
    assert config.poll_seconds == 0.5
    assert config.alert_log == "-"
    assert config.witnesses == ()
    assert config.min_witnesses == 0
    assert config.webhooks == ()
    assert config.webhook_timeout_seconds == 5.0
    assert config.webhook_max_backoff_seconds == 60.0
    assert config.dead_letter == tmp_path / "monitor-state" / "dead-letters.jsonl"
    # The example lists every threshold with its default.
    assert config.thresholds == Thresholds()
    assert config.timetable == ()
    assert config.canary is None


def test_every_commented_out_key_of_the_example_is_a_known_key(tmp_path):
    # Uncomment each "# key = value" and "# [table]" line of the example
    # (except witnesses' min, which needs a witness key): a documented key that
    # the parser refused as unknown would fail here.
    lines = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"# ((?:\[\[?\w+\]\]?)|(?:\w+ = .*))", line)
        if match and not match.group(1).startswith("min ="):
            lines.append(match.group(1))
        else:
            lines.append(line)
    (tmp_path / "monitor.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "log.vkey").write_text(str(LOG_KEY) + "\n", encoding="utf-8")
    config = load_config(tmp_path / "monitor.toml")
    assert config.tiles_url == "https://tiles.example/log"
    assert config.origin == "kpu.example/pemilu2024"
    assert config.dead_letter == tmp_path / "monitor-state" / "dead-letters.jsonl"
    (window,) = config.timetable
    assert window.name == "counting"
    assert window.start == dt.datetime(2024, 2, 14, 6, tzinfo=dt.UTC)
    assert window.end == dt.datetime(2024, 3, 20, 17, tzinfo=dt.UTC)
    assert window.schemas == {"results.tally/v1", "results.recap/v1"}
    assert window.expect_results is True
    assert config.canary is not None
    assert config.canary.key == tmp_path / "canary.key"
    assert config.canary.interval_seconds == 5.0
    assert config.canary.passphrase_file == tmp_path / "canary.pass"


# --- paths and defaults -------------------------------------------------------------


def test_paths_are_relative_to_the_config_files_directory(tmp_path, monkeypatch):
    where = tmp_path / "etc" / "saksi"
    _keys(where / "keys")
    (where / "monitor.toml").write_text(
        """\
[log]
url = "http://127.0.0.1:8080"
key = "keys/log.vkey"

[witnesses]
keys = ["keys/w1.vkey", "keys/w2.vkey"]

[monitor]
state = "state"
alert_log = "alerts.jsonl"

[webhook]
dead_letter = "dead/letters.jsonl"

[canary]
key = "keys/canary.key"
passphrase_file = "keys/canary.pass"
""",
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not relative to the working directory
    config = load_config(where / "monitor.toml")
    assert config.log_key == LOG_KEY
    assert config.witnesses == tuple(w.verifier_key for w in WITNESS_KEYS)
    assert config.state == where / "state"
    assert config.alert_log == str(where / "alerts.jsonl")
    assert config.dead_letter == where / "dead" / "letters.jsonl"
    assert config.canary is not None
    assert config.canary.key == where / "keys" / "canary.key"
    assert config.canary.passphrase_file == where / "keys" / "canary.pass"


def test_defaults_of_a_minimal_config(tmp_path):
    _keys(tmp_path)
    (tmp_path / "m.toml").write_text(MINIMAL, encoding="utf-8")
    config = load_config(tmp_path / "m.toml")
    assert config.listen == ("127.0.0.1", 9464)
    assert config.tiles_url == "http://127.0.0.1:8080/log"
    assert config.dead_letter == tmp_path / "state" / "dead-letters.jsonl"
    assert config.origin == LOG_KEY.name
    assert config.min_witnesses == 0
    assert config.poll_seconds == 0.5
    assert config.alert_log == "-"
    assert config.thresholds == Thresholds()
    assert config.canary is None


def test_a_trailing_slash_on_the_url_is_dropped_before_tiles_is_derived(base):
    config = parse_config(_with("log.url", "https://log.example/"), base)
    assert config.log_url == "https://log.example"
    assert config.tiles_url == "https://log.example/log"


def test_explicit_tiles_and_origin_are_taken(base):
    raw = _raw()
    raw["log"]["tiles"] = "https://cdn.example/pemilu/log/"
    raw["log"]["origin"] = "other.example/log"
    config = parse_config(raw, base)
    assert config.tiles_url == "https://cdn.example/pemilu/log"
    assert config.origin == "other.example/log"


def test_witnesses_min_defaults_to_one_when_keys_are_listed(base):
    raw = _with("witnesses.min", ...)
    raw["witnesses"]["keys"] = ["w1.vkey", "w2.vkey"]
    config = parse_config(raw, base)
    assert config.min_witnesses == 1
    assert len(config.witnesses) == 2
    raw["witnesses"]["min"] = 2
    assert parse_config(raw, base).min_witnesses == 2
    raw["witnesses"]["min"] = 0
    assert parse_config(raw, base).min_witnesses == 0


@pytest.mark.parametrize(
    ("listen", "want"),
    [
        ("10.0.0.7:9100", ("10.0.0.7", 9100)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9464", ("::1", 9464)),
        ("monitor.internal:65535", ("monitor.internal", 65535)),
    ],
)
def test_listen_address_forms(base, listen, want):
    assert parse_config(_with("monitor.listen", listen), base).listen == want


@pytest.mark.parametrize("digits", [2, 4, 6, 10, 13])
def test_every_region_code_length_is_a_valid_key_region_digits(base, digits):
    config = parse_config(_with("thresholds.key_region_digits", digits), base)
    assert config.thresholds.key_region_digits == digits


@pytest.mark.parametrize("share", [1, 1.0, 0.01])
def test_corrections_share_bounds_inside(base, share):
    config = parse_config(_with("thresholds.corrections_share", share), base)
    assert config.thresholds.corrections_share == share


def test_thresholds_take_an_int_for_a_float_and_zero_counts(base):
    raw = _raw()
    raw["thresholds"] = {
        "reading_difference_ratio": 1,
        "hold_seconds": 60,
        "max_revisions": 0,
        "key_max_regions": 0,
    }
    limits = parse_config(raw, base).thresholds
    assert limits.reading_difference_ratio == 1.0
    assert isinstance(limits.reading_difference_ratio, float)
    assert limits.hold_seconds == 60.0
    assert limits.max_revisions == 0
    assert limits.key_max_regions == 0


def test_timetable_times_with_an_offset_are_taken_in_utc(base):
    # A TOML offset date-time, not a string: 13:00 in Jakarta is 06:00 UTC.
    jakarta = dt.timezone(dt.timedelta(hours=7))
    raw = _raw()
    raw["timetable"][0]["from"] = dt.datetime(2024, 2, 14, 13, tzinfo=jakarta)
    (window,) = parse_config(raw, base).timetable
    assert window.start == dt.datetime(2024, 2, 14, 6, tzinfo=dt.UTC)
    assert window.start.tzinfo == dt.UTC


def test_timetable_expect_results_defaults_to_false(base):
    (window,) = parse_config(_with("timetable.0.expect_results", ...), base).timetable
    assert window.expect_results is False


def test_window_holds_from_inclusive_to_exclusive_for_its_schemas_only():
    start = dt.datetime(2024, 2, 14, 6, tzinfo=dt.UTC)
    end = dt.datetime(2024, 2, 15, 6, tzinfo=dt.UTC)
    window = Window("counting", start, end, frozenset({"results.tally/v1"}))
    tick = dt.timedelta(milliseconds=1)
    assert window.holds(start, "results.tally/v1")
    assert window.holds(end - tick, "results.tally/v1")
    assert not window.holds(start - tick, "results.tally/v1")
    assert not window.holds(end, "results.tally/v1")
    assert not window.holds(start, "results.recap/v1")


# --- every kind of mistake: a ConfigError naming where --------------------------


def _refused(raw: dict[str, Any], base: Path, where: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, base)
    message = str(err.value)
    assert re.search(where, message), message
    return message


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        # missing tables and keys
        ("log", ..., r"\[log\] table is missing"),
        ("monitor", ..., r"\[monitor\] table is missing"),
        ("log.url", ..., r"\[log\] url"),
        ("log.key", ..., r"\[log\] key"),
        ("monitor.state", ..., r"\[monitor\] state"),
        ("timetable.0.name", ..., r"\[\[timetable\]\] number 1 name"),
        ("timetable.0.from", ..., r"\[\[timetable\]\] number 1: from"),
        ("timetable.0.to", ..., r"\[\[timetable\]\] number 1: to"),
        # typos: unknown keys at the top and in each table
        ("thresold", {}, r"the file: unknown key 'thresold'"),
        ("log.urls", "http://x", r"\[log\]: unknown key 'urls'"),
        ("witnesses.minimum", 1, r"\[witnesses\]: unknown key 'minimum'"),
        ("monitor.poll_second", 1.0, r"\[monitor\]: unknown key 'poll_second'"),
        ("webhook.url", "http://x", r"\[webhook\]: unknown key 'url'"),
        ("thresholds.max_revision", 3, r"\[thresholds\]: unknown key 'max_revision'"),
        ("canary.interval", 5.0, r"\[canary\]: unknown key 'interval'"),
        (
            "timetable.0.expect_result",
            True,
            r"\[\[timetable\]\] number 1: unknown key 'expect_result'",
        ),
        # tables of the wrong kind
        ("log", "http://127.0.0.1:8080", r"\[log\] must be a table"),
        ("monitor", ["state"], r"\[monitor\] must be a table"),
        ("thresholds", 3, r"\[thresholds\] must be a table"),
        ("timetable", {"name": "x"}, r"\[\[timetable\]\] must be an array"),
        ("timetable.0", "counting", r"\[\[timetable\]\] number 1 must be a table"),
        # URLs
        ("log.url", "127.0.0.1:8080", r"\[log\] url: .* is not an http"),
        ("log.url", "ftp://log.example", r"\[log\] url: .* is not an http"),
        ("log.url", 8080, r"\[log\] url"),
        ("log.tiles", "tiles.example/log", r"\[log\] tiles: .* is not an http"),
        ("log.tiles", 42, r"\[log\] tiles: .* is not an http"),
        ("webhook.urls", ["hooks.example/alert"], r"\[webhook\] urls"),
        ("webhook.urls", "http://hooks.example", r"\[webhook\] urls"),
        ("webhook.urls", [1], r"\[webhook\] urls"),
        ("log.origin", "", r"\[log\] origin"),
        ("log.origin", 7, r"\[log\] origin"),
        # key files
        ("log.key", "missing.vkey", r"\[log\] key: cannot read .*missing\.vkey"),
        ("log.key", ".", r"\[log\] key: cannot read"),
        ("witnesses.keys", ["w9.vkey"], r"\[witnesses\] keys: cannot read"),
        ("witnesses.keys", "w1.vkey", r"\[witnesses\] keys must be a list"),
        # witnesses min
        ("witnesses.min", 2, r"\[witnesses\] min must be 0 to 1"),
        ("witnesses.min", -1, r"\[witnesses\] min must be 0 to 1"),
        ("witnesses.min", 1.5, r"\[witnesses\] min must be a whole number"),
        ("witnesses.min", True, r"\[witnesses\] min must be a number"),
        # positive numbers
        ("monitor.poll_seconds", 0, r"\[monitor\] poll_seconds must be a positive"),
        ("monitor.poll_seconds", -1.0, r"\[monitor\] poll_seconds must be a positive"),
        ("monitor.poll_seconds", "1s", r"\[monitor\] poll_seconds must be a number"),
        ("monitor.poll_seconds", False, r"\[monitor\] poll_seconds must be a number"),
        ("webhook.timeout_seconds", 0.0, r"\[webhook\] timeout_seconds"),
        ("webhook.max_backoff_seconds", -60, r"\[webhook\] max_backoff_seconds"),
        ("canary.interval_seconds", 0, r"\[canary\] interval_seconds"),
        ("canary.passphrase_file", 3, r"\[canary\] passphrase_file"),
        ("webhook.dead_letter", 3, r"\[webhook\] dead_letter"),
        ("monitor.alert_log", "", r"\[monitor\] alert_log"),
        ("monitor.alert_log", 1, r"\[monitor\] alert_log"),
        # thresholds
        (
            "thresholds.max_revisions",
            -1,
            r"\[thresholds\] max_revisions must be a number, not negative",
        ),
        ("thresholds.max_revisions", 2.5, r"\[thresholds\] max_revisions .*whole"),
        (
            "thresholds.hold_seconds",
            -0.5,
            r"\[thresholds\] hold_seconds must be a number, not negative",
        ),
        ("thresholds.stall_seconds", "5m", r"\[thresholds\] stall_seconds .*number"),
        ("thresholds.reading_difference_votes", -50, r"reading_difference_votes"),
        ("thresholds.corrections_min", True, r"\[thresholds\] corrections_min"),
        ("thresholds.corrections_share", 0, r"\[thresholds\] corrections_share"),
        ("thresholds.corrections_share", 0.0, r"\[thresholds\] corrections_share"),
        ("thresholds.corrections_share", 1.01, r"\[thresholds\] corrections_share"),
        ("thresholds.corrections_share", -0.5, r"\[thresholds\] corrections_share"),
        ("thresholds.key_region_digits", 3, r"\[thresholds\] key_region_digits"),
        ("thresholds.key_region_digits", 0, r"\[thresholds\] key_region_digits"),
        ("thresholds.key_region_digits", 12, r"\[thresholds\] key_region_digits"),
        ("thresholds.key_region_digits", 4.0, r"\[thresholds\] key_region_digits"),
        # the timetable
        ("timetable.0.from", 20240214, r"\[\[timetable\]\] number 1: from"),
        (
            "timetable.0.from",
            dt.datetime(2024, 2, 14, 6),  # a TOML local date-time: no zone
            r"\[\[timetable\]\] number 1: from must be a time with its zone",
        ),
        ("timetable.0.to", dt.date(2024, 3, 20), r"number 1: to must be a time"),
        (
            "timetable.0.to",
            "2024-02-14T06:00:00.000Z",  # equal to from
            r"\[\[timetable\]\] number 1: 'to' must be after 'from'",
        ),
        (
            "timetable.0.to",
            "2024-02-13T06:00:00.000Z",
            r"\[\[timetable\]\] number 1: 'to' must be after 'from'",
        ),
        ("timetable.0.expect_results", "yes", r"number 1: expect_results must be"),
        ("timetable.0.expect_results", 1, r"number 1: expect_results must be"),
        ("timetable.0.schemas", "results.tally/v1", r"number 1 schemas must be"),
        # the listen address
        ("monitor.listen", "9464", r"\[monitor\] listen"),
        ("monitor.listen", ":9464", r"\[monitor\] listen"),
        ("monitor.listen", "localhost:", r"\[monitor\] listen"),
        ("monitor.listen", "localhost:http", r"\[monitor\] listen"),
        ("monitor.listen", "localhost:65536", r"\[monitor\] listen"),
        ("monitor.listen", "localhost:-1", r"\[monitor\] listen"),
        ("monitor.listen", 9464, r"\[monitor\] listen must be HOST:PORT"),
    ],
)
def test_a_bad_config_is_refused_naming_where(base, path, value, where):
    _refused(_with(path, value), base, where)


def test_a_canary_table_without_its_key_is_refused(base):
    raw = _raw()
    raw["canary"] = {"interval_seconds": 5.0}
    _refused(raw, base, r"\[canary\] key is missing")


def test_a_second_timetable_window_is_named_by_its_number(base):
    raw = _raw()
    bad = copy.deepcopy(raw["timetable"][0])
    bad["to"] = bad["from"]
    raw["timetable"].append(bad)
    _refused(raw, base, r"\[\[timetable\]\] number 2: 'to' must be after 'from'")


def test_an_unknown_key_message_lists_the_known_ones(base):
    message = _refused(_with("monitor.pol_seconds", 1), base, r"\[monitor\]")
    for known in ("alert_log", "listen", "poll_seconds", "state"):
        assert known in message


def test_a_key_file_that_is_not_utf8_is_refused(base):
    (base / "log.vkey").write_bytes(b"\xff\xfe not text")
    _refused(_raw(), base, r"\[log\] key: .*log\.vkey is not UTF-8 text")


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("log.vkey", "not a verifier key", r"\[log\] key: .*log\.vkey is not a"),
        # the right shape, but the key ID does not match the name and key
        ("log.vkey", str(LOG_KEY)[:-4] + "AAAA", r"\[log\] key: .*is not a"),
        ("w1.vkey", "garbage", r"\[witnesses\] keys: .*w1\.vkey is not a"),
    ],
)
def test_a_key_file_that_is_not_a_verifier_key_is_refused(base, name, text, where):
    (base / name).write_text(text + "\n", encoding="utf-8")
    _refused(_raw(), base, where)


@pytest.mark.parametrize(
    "spelling", ["2024-02-14 06:00", "2024-02-14T06:00:00Z", "2024-02-30T06:00:00.000Z"]
)
def test_a_timetable_time_string_of_the_wrong_form_is_refused(base, spelling):
    _refused(
        _with("timetable.0.from", spelling), base, r"\[\[timetable\]\] number 1: from"
    )


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("monitor.poll_seconds", r"\[monitor\] poll_seconds"),
        ("webhook.timeout_seconds", r"\[webhook\] timeout_seconds"),
        ("thresholds.hold_seconds", r"\[thresholds\] hold_seconds"),
        ("thresholds.reading_difference_ratio", r"reading_difference_ratio"),
    ],
)
def test_nan_is_not_a_number_of_seconds(base, path, where):
    _refused(_with(path, math.nan), base, where)


@pytest.mark.parametrize("listen", ["localhost:²", "::1"])
def test_odd_listen_addresses_are_refused(base, listen):
    _refused(_with("monitor.listen", listen), base, r"\[monitor\] listen")


# --- the file itself ----------------------------------------------------------------


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read .*nowhere\.toml"):
        load_config(tmp_path / "nowhere.toml")


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "monitor.toml"
    path.write_bytes(MINIMAL.encode("utf-8") + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"monitor\.toml is not UTF-8"):
        load_config(path)


@pytest.mark.parametrize(
    "text",
    [
        "[log\nurl = 1\n",
        "url = http://unquoted\n",
        '[log]\nurl = "a"\nurl = "b"\n',  # a key twice
        "{}: yaml perhaps\n",
    ],
)
def test_a_file_that_is_not_toml_is_refused(tmp_path, text):
    path = tmp_path / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"monitor\.toml is not TOML"):
        load_config(path)


def test_a_typo_in_a_real_file_is_refused_naming_the_table(tmp_path):
    _keys(tmp_path)
    path = tmp_path / "monitor.toml"
    path.write_text(
        MINIMAL + "\n[thresholds]\nmax_revison = 5\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"\[thresholds\]: unknown key 'max_revison'"):
        load_config(path)


def test_config_error_is_a_value_error():
    # Callers that catch ValueError for bad input keep working.
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a = " + "[" * 3000 + "]" * 3000, "nested too deep"),
        (
            MINIMAL + "\n[thresholds]\nreading_difference_ratio = 1" + "0" * 400,
            "reading_difference_ratio is out of range",
        ),
        (
            MINIMAL + "\n[thresholds]\nmax_revisions = 1" + "0" * 400,
            "max_revisions is out of range",
        ),
        (MINIMAL + "poll_seconds = 1" + "0" * 400, "poll_seconds is out of range"),
        (
            MINIMAL + '\n[[timetable]]\nname = "x"\nschemas = []\n'
            "from = 0001-01-01T00:00:00+01:00\nto = 2024-01-01T00:00:00Z\n",
            "from is out of range",
        ),
        (MINIMAL.replace('"log.vkey"', '"log\\u0000.vkey"'), "is not a path"),
    ],
)
def test_values_python_cannot_hold_are_config_errors(base, text, match):
    # Found writing the monitor_config fuzz target (regression seeds in its
    # corpus): RecursionError, OverflowError and ValueError (a NUL in a path)
    # escaped instead of ConfigError.
    path = base / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        load_config(path)
