"""Election forensics' statistics (``verifier.rules.forensics``).

The chi-square upper tail against published critical values and against the
exact closed form for even degrees of freedom; the last-digit test on uniform
and on piled-up digits; a tally body's figures on both kinds of ballot; the
extremes; the fingerprint's bins and its corner.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domains.synthetic import ElectionSpec, tally
from verifier.rules.forensics import (
    ALPHA,
    BINS,
    MIN_TESTED,
    Fingerprint,
    LastDigits,
    StationFigures,
    chi_square_sf,
    extremes,
    station_figures,
)


@pytest.mark.parametrize(
    ("statistic", "df", "p"),
    [
        # Critical values of the chi-square distribution (any statistics table,
        # e.g. NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.4).
        (3.841, 1, 0.05),
        (6.635, 1, 0.01),
        (5.991, 2, 0.05),
        (16.919, 9, 0.05),
        (21.666, 9, 0.01),
        (27.877, 9, 0.001),
        (31.410, 20, 0.05),
    ],
)
def test_chi_square_tail_matches_published_critical_values(statistic, df, p):
    assert chi_square_sf(statistic, df) == pytest.approx(p, rel=2e-3)


def _even_df_tail(x: float, df: int) -> float:
    """The exact tail for even df: e^(-x/2) * sum over i < df/2 of (x/2)^i / i!."""
    half = x / 2
    return math.exp(-half) * sum(half**i / math.factorial(i) for i in range(df // 2))


@given(st.floats(0.001, 200), st.integers(1, 15))
def test_chi_square_tail_equals_the_closed_form_for_even_df(x, k):
    assert chi_square_sf(x, 2 * k) == pytest.approx(
        _even_df_tail(x, 2 * k), rel=1e-9, abs=1e-300
    )


@given(st.floats(0, 500), st.floats(0, 500), st.integers(1, 40))
def test_chi_square_tail_is_a_tail(a, b, df):
    low, high = sorted((a, b))
    assert 0.0 <= chi_square_sf(high, df) <= chi_square_sf(low, df) <= 1.0


def test_chi_square_refuses_nonsense():
    for statistic, df in ((1.0, 0), (-1.0, 9), (float("nan"), 9)):
        with pytest.raises(ValueError, match="chi-square"):
            chi_square_sf(statistic, df)
    assert chi_square_sf(0, 9) == 1.0


def test_uniform_last_digits_pass_and_piled_up_ones_are_flagged():
    uniform = LastDigits()
    uniform.add(range(10, 10_010))  # every last digit 1,000 times
    result = uniform.test()
    assert result["n"] == 10_000
    assert result["observed"] == [1000] * 10
    assert result["chi_square"] == 0
    assert result["p_value"] == 1.0
    assert result["flagged"] is False
    piled = LastDigits()
    piled.add([10, 20, 30, 40, 50] * 40 + list(range(10, 110)))
    few = LastDigits()
    few.add([10, 20, 30, 40] * (MIN_TESTED // 4))  # all zeros, but too few
    assert (few.test()["p_value"], few.test()["flagged"]) == (None, False)
    few.add([10, 20, 30, 40])
    assert few.test()["flagged"] is True
    assert piled.test()["flagged"] is True
    assert piled.test()["p_value"] < ALPHA


def test_small_counts_have_no_last_digit_and_a_revision_can_be_taken_out():
    digits = LastDigits()
    digits.add([0, 1, 9, 10, 25])
    assert sum(digits.observed) == 2
    digits.add([10], sign=-1)
    assert digits.observed == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert LastDigits().test() | {"observed": None} == {
        "n": 0,
        "observed": None,
        "chi_square": None,
        "df": 9,
        "p_value": None,
        "flagged": False,
    }


def test_figures_of_a_candidate_ballot():
    body = tally(ElectionSpec(error_share=0), "ppwp", "3171011001001")
    figures = station_figures(body)
    assert figures is not None
    assert figures.entitled == (
        body["registered"]["dpt"]["total"]
        + body["voters"]["dptb"]["total"]
        + body["voters"]["dpk"]["total"]
    )
    assert figures.voted == body["voters"]["total"]["total"]
    assert figures.valid == body["valid"]
    assert sorted(figures.counts) == sorted(body["votes"].values())
    assert figures.leader == max(body["votes"].values())


def test_figures_of_a_party_ballot():
    body = tally(ElectionSpec(error_share=0), "pdpr", "3171011001001")
    figures = station_figures(body)
    assert figures is not None
    by_party = [
        p["party"] + sum(p["candidates"].values()) for p in body["parties"].values()
    ]
    assert figures.leader == max(by_party)
    assert sum(figures.counts) == sum(by_party)
    assert station_figures({"stage": "officer_confirmed"}) is None


@pytest.mark.parametrize(
    ("figures", "flags"),
    [
        (StationFigures(200, 150, 145, (100, 45), 100), []),
        (StationFigures(200, 200, 190, (100, 90), 100), ["turnout-100"]),
        (StationFigures(200, 210, 190, (100, 90), 100), ["turnout-100"]),
        (StationFigures(200, 150, 145, (145, 0), 145), ["one-candidate-100"]),
        (StationFigures(0, 0, 0, (0, 0), 0), []),
        (StationFigures(200, 150, 145, (145,), 145), []),  # one on the ballot
        # a misread count (641 read for 41: the counts add up to more than the
        # valid votes) is the arithmetic checks' business, not a sweep
        (StationFigures(213, 186, 185, (71, 641, 511), 641), []),
    ],
)
def test_extremes(figures, flags):
    assert extremes(figures) == flags


def test_the_fingerprint_bins_and_its_corner():
    fingerprint = Fingerprint()
    fingerprint.add(StationFigures(100, 60, 50, (30, 20), 30))  # 60%, 60%
    fingerprint.add(StationFigures(100, 100, 100, (100, 0), 100))  # 100%, 100%
    fingerprint.add(StationFigures(100, 120, 100, (96, 4), 96))  # over 100%
    fingerprint.add(StationFigures(0, 0, 0, (), 0))  # no one entitled: left out
    out = fingerprint.to_json()
    assert out["stations"] == 3
    assert out["cells"][int(0.6 * BINS)][int(0.6 * BINS)] == 1
    assert out["cells"][BINS - 1][BINS - 1] == 2
    assert (out["corner"], out["corner_share"]) == (2, 2 / 3)
    fingerprint.add(StationFigures(100, 100, 100, (100, 0), 100), sign=-1)
    assert fingerprint.to_json()["corner"] == 1


# -- on a synthetic election, clean and with planted anomalies ------------------------

REGENCIES = ("3171", "3172", "3173", "3174", "3175")


def _stations(regency: str, count: int = 300) -> list[str]:
    return [f"{regency}01{1001 + n // 20:04d}{n % 20 + 1:03d}" for n in range(count)]


def _forensics(spec: ElectionSpec) -> dict[str, dict]:
    """Per regency: the last-digit test and the fingerprint of two ballots."""
    out = {}
    for regency in REGENCIES:
        digits, fingerprint = LastDigits(), Fingerprint()
        for station in _stations(regency):
            for ballot in ("ppwp", "pdpr"):
                figures = station_figures(tally(spec, ballot, station))
                assert figures is not None
                digits.add(figures.counts)
                if ballot == "ppwp":
                    fingerprint.add(figures)
        out[regency] = {"digits": digits.test(), "fingerprint": fingerprint.to_json()}
    return out


def test_a_clean_synthetic_election_is_not_flagged():
    found = _forensics(ElectionSpec(error_share=0))
    for regency, figures in found.items():
        assert figures["digits"]["flagged"] is False, regency
        assert figures["fingerprint"]["corner"] == 0, regency
        assert figures["fingerprint"]["flagged"] is False, regency


def test_planted_stuffing_and_made_up_counts_are_flagged_where_planted():
    spec = ElectionSpec(error_share=0, stuffed=("3172",), made_up=("3173",))
    found = _forensics(spec)
    stuffed = found["3172"]["fingerprint"]
    assert stuffed["flagged"] is True
    assert 0.35 < stuffed["corner_share"] < 0.65  # about planted_share
    assert found["3173"]["digits"]["flagged"] is True
    assert found["3173"]["digits"]["p_value"] < 1e-6
    for regency in ("3171", "3174", "3175"):
        assert found[regency]["digits"]["flagged"] is False, regency
        assert found[regency]["fingerprint"]["flagged"] is False, regency
    # The planted forms still add up: the arithmetic checks do not see them.
    from verifier.rules.arithmetic import tally_flags

    for station in _stations("3172", 40) + _stations("3173", 40):
        for ballot in ("ppwp", "pdpr"):
            assert tally_flags(tally(spec, ballot, station), ballot) == [], station


def test_planting_nowhere_changes_no_form():
    plain, planted = ElectionSpec(), ElectionSpec(stuffed=("99",), made_up=("98",))
    for station in _stations("3171", 30):
        for ballot in ("ppwp", "pdpr", "pdpd"):
            assert tally(plain, ballot, station) == tally(planted, ballot, station)
