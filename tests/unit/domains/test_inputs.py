"""Input files: gzip told by its bytes, strict lines, CSV columns, the data folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from domains.inputs import (
    BadLine,
    MalformedInput,
    csv_rows,
    data_dir,
    json_lines,
    text_lines,
)


def test_gzip_is_told_by_its_bytes_not_its_name(tmp_path):
    plain = tmp_path / "looks.gz"
    plain.write_text('{"a": 1}\n', encoding="utf-8")
    packed = tmp_path / "looks-plain.jsonl"
    packed.write_bytes(gzip.compress(b'{"a": 1}\n\n{"a": 2}\n'))
    assert list(json_lines(plain)) == [(1, {"a": 1})]
    assert list(json_lines(packed)) == [(1, {"a": 1}), (3, {"a": 2})]


def test_a_bad_line_stops_the_read_or_is_handed_over(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n[1]\n\xff\xfe\n{"a": 2\n{"a": 3}\n')
    with pytest.raises(MalformedInput) as caught:
        list(json_lines(path))
    assert caught.value.bad == BadLine(path, 2, "expected a JSON object, found list")
    assert str(caught.value) == f"{path}, line 2: expected a JSON object, found list"
    bad: list[BadLine] = []
    assert [n for n, _ in json_lines(path, bad.append)] == [1, 5]
    assert [(b.line, b.reason.split(" ")[0]) for b in bad] == [
        (2, "expected"),
        (3, "not"),
        (4, "not"),
    ]
    assert bad[1].reason.startswith("not UTF-8")
    assert bad[2].reason.startswith("not JSON")


def test_cut_short_gzip_always_stops(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    lines = b"".join(b'{"n": %d}\n' % n for n in range(5000))
    packed = gzip.compress(lines)
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(MalformedInput, match="corrupt or cut short"):
        list(text_lines(path, lambda _: None))


def test_a_station_file_of_broken_gzip_stops_the_read(tmp_path):
    # Found by fuzzing (tests/fuzz/corpus/sirekap_file/crash-*): a per-TPS
    # file cut short inside its gzip header escaped as EOFError.
    from domains.sirekap import read_stations

    for broken in (b"\x1f\x8b", gzip.compress(b'{"chart": {}}')[:-6]):
        (tmp_path / "3171011001001.json").write_bytes(broken)
        with pytest.raises(MalformedInput, match="corrupt or cut short"):
            list(read_stations(tmp_path, lambda _: None))


def test_csv_names_the_missing_column_and_the_short_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("kode,nama\n11,ACEH\n", encoding="utf-8")
    with pytest.raises(MalformedInput, match=r"line 1: no column 'tingkat'"):
        list(csv_rows(path, ("kode", "tingkat")))
    path.write_text("kode,tingkat,nama\n11,1,ACEH\n1101,2\n", encoding="utf-8")
    rows = csv_rows(path, ("kode", "nama"))
    assert next(rows) == (2, ["11", "ACEH"])
    with pytest.raises(MalformedInput, match="line 3: 2 fields, the header names 3"):
        next(rows)
    packed = tmp_path / "t.csv.data"
    packed.write_bytes(gzip.compress(b"kode\n11\n"))
    assert list(csv_rows(packed, ("kode",))) == [(2, ["11"])]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(MalformedInput, match="empty: expected a header naming kode"):
        list(csv_rows(empty, ("kode",)))


def test_the_data_folder_does_not_depend_on_the_current_directory(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    found, source = data_dir({})
    assert found.is_absolute()
    assert found == Path(__file__).resolve().parents[4] / "shared" / "data"
    assert "../shared/data" in source
    assert data_dir({"SAKSI_DATA_DIR": "elsewhere"}) == (
        tmp_path / "elsewhere",
        "SAKSI_DATA_DIR",
    )


def test_deeply_nested_lines_and_station_files_are_bad_lines(tmp_path):
    # RecursionError escaped json_lines and the per-TPS reader; a number too
    # long for int() escaped the per-TPS reader (a ValueError, not JSON's).
    from domains.sirekap import read_stations

    path = tmp_path / "deep.jsonl"
    path.write_bytes(b"[" * 3000 + b"\n" + b'{"a": 1}\n')
    bad: list[BadLine] = []
    assert list(json_lines(path, bad.append)) == [(2, {"a": 1})]
    assert bad == [BadLine(path, 1, "not JSON (nested too deep)")]
    for text in (b"[" * 3000, b"1" * 5000):
        (tmp_path / "3171011001001.json").write_bytes(text)
        refused: list[BadLine] = []
        assert list(read_stations(tmp_path, refused.append)) == []
        assert refused[0].reason.startswith("not JSON")
