"""The reference's integrity rule and the report's pass/fail logic, without a database."""

from __future__ import annotations

import pytest

from columnar_etl.verify import Check, JobIntegrity, VerifyReport, integrity_score


@pytest.mark.parametrize(
    ("expected", "actual", "score"),
    [(200, 200, 100.0), (200, 190, 95.0), (200, 189, 94.5), (200, 201, 100.5), (0, 0, 100.0)],
)
def test_score_is_actual_over_expected(expected: int, actual: int, score: float) -> None:
    assert integrity_score(expected, actual) == pytest.approx(score)


def test_nothing_expected_but_rows_present_scores_zero() -> None:
    assert integrity_score(0, 3) == 0.0


@pytest.mark.parametrize(
    ("actual", "duplicates", "status"),
    [(190, 0, "passed"), (189, 0, "failed"), (200, 1, "failed"), (200, 0, "passed")],
)
def test_passed_at_95_with_no_duplicate_legacy_id(
    actual: int, duplicates: int, status: str
) -> None:
    item = JobIntegrity(1, "orders", "completed", 200, actual, duplicates, {"duplicate": 2})
    data = item.to_dict()
    assert data["status"] == item.status == status
    assert data["missing_records"] == 200 - actual
    assert data["error_summary"] == {"duplicate": 2}


def test_report_fails_on_a_failed_check_and_is_incomplete_when_one_was_not_run() -> None:
    ok = Check("row_count", True, {"missing_records": 0}, "orders", 3)
    unchecked = Check("source_rows", None, {}, "orders", 3, reason="no source given")
    failed = Check("duplicate_keys", False, {"legacy_id": 1}, "customers")
    assert VerifyReport("t", None, (ok,)).status == "passed"
    incomplete = VerifyReport("t", None, (ok, unchecked))
    assert incomplete.passed and incomplete.status == "incomplete"
    assert incomplete.to_dict()["not_checked"] == ["source_rows (job 3)"]
    report = VerifyReport("t", None, (ok, unchecked, failed))
    assert not report.passed and report.to_dict()["failed"] == ["duplicate_keys (customers)"]
    assert report.to_dict()["checks"][1] == {
        "name": "source_rows",
        "entity": "orders",
        "job_id": 3,
        "status": "not_checked",
        "passed": None,
        "figures": {},
        "reason": "no source given",
    }
