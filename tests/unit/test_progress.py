"""The progress display: a live bar on a terminal, one plain line per batch otherwise."""

from __future__ import annotations

import io
import re

from columnar_etl.progress import progress_reporter

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_terminal_gets_a_bar_with_rows_rate_and_eta() -> None:
    out = io.StringIO()
    with progress_reporter(out, force_terminal=True) as report:
        report("orders", 0, 2_000)
        report("orders", 1_000, 2_000)
        report("orders", 2_000, 2_000)
    text = ANSI.sub("", out.getvalue())
    final = " ".join(text.split("\r")[-1].split())  # the last redraw, wrapped at 80 columns
    assert final.startswith("orders")
    assert "━" in final and "2000/2000 rows" in final
    assert re.search(r"[\d,]+ rows/s", final) and "ETA 0:00:00" in final


def test_resumed_rows_do_not_count_towards_the_rate() -> None:
    out = io.StringIO()
    with progress_reporter(out, force_terminal=True) as report:
        report("orders", 2_000, 2_000)
    assert "- rows/s" in ANSI.sub("", out.getvalue())


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with progress_reporter(out) as report:
        report("customers", 0, 300)
        report("customers", 300, 300)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("customers: 0/300 rows (0.0%, ")
    assert lines[1].startswith("customers: 300/300 rows (100.0%, ")
    assert "\x1b" not in out.getvalue()


def test_plain_lines_say_what_a_run_waits_for() -> None:
    out = io.StringIO()
    with progress_reporter(out) as report:
        report.waiting("customers", "waiting for a lock on products held by pid 42")
        report("customers", 0, 300)
    lines = out.getvalue().splitlines()
    assert lines[0] == "customers: waiting for a lock on products held by pid 42"
    assert lines[1].startswith("customers: 0/300 rows (0.0%, ")


def test_the_bar_says_what_a_run_waits_for_until_it_moves_again() -> None:
    out = io.StringIO()
    with progress_reporter(out, force_terminal=True) as report:
        report("orders", 0, 2_000)
        report.waiting("orders", "waiting for a lock on orders held by pid 42")
        shown = ANSI.sub("", out.getvalue())
        report("orders", 1_000, 2_000)
    assert "orders: waiting for a lock on orders held by pid 42" in shown
    final = " ".join(ANSI.sub("", out.getvalue()).split("\r")[-1].split())
    assert final.startswith("orders ━") and "1000/2000 rows" in final and "pid 42" not in final


def test_a_wait_before_the_first_report_gets_its_own_line_then_the_bar() -> None:
    out = io.StringIO()
    with progress_reporter(out, force_terminal=True) as report:
        report.waiting("customers", "waiting for a lock on customers held by pid 7")
        report("customers", 100, 300)  # a resumed job: its earlier rows are not this run's
    final = " ".join(ANSI.sub("", out.getvalue()).split("\r")[-1].split())
    assert final.startswith("customers ━") and "100/300 rows" in final and "- rows/s" in final
