"""Label values stay bounded whatever the data says."""

from __future__ import annotations

from fabric_server.db.types import utcnow
from fabric_server.events.metrics import _Starts
from fabric_server.observability.labels import OTHER, UNKNOWN, LabelValues, attempt_label


def test_new_values_beyond_the_limit_count_as_other() -> None:
    models = LabelValues(3, max_length=10)
    assert [models(f"m{i}") for i in range(5)] == ["m0", "m1", "m2", OTHER, OTHER]
    assert models("m1") == "m1"  # known values keep their name
    assert models("x" * 50) == OTHER
    assert models(None) == UNKNOWN
    assert models("") == UNKNOWN


def test_long_values_are_cut() -> None:
    assert LabelValues(5, max_length=4)("abcdefgh") == "abcd"


def test_attempt_numbers_fold_after_nine() -> None:
    assert [attempt_label(n) for n in (1, 9, 10, 250)] == ["1", "9", "10+", "10+"]


def test_remembered_starts_are_bounded_oldest_first() -> None:
    starts = _Starts(2)
    now = utcnow()
    for key in ("a", "b", "c"):
        starts.remember(key, "", now)
    assert len(starts) == 2
    assert starts.forget("a") is None
    assert starts.forget("c") == ("", now)
