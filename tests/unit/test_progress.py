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
