"""The README's notebook example runs as printed, and shows the transformed order."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_notebook_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## In a notebook", 1)[1]
    [code] = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue()
    # The example's messy order comes out clean: a generated order number, the item sum as
    # the total ("n/a" does not parse), the mapped status.
    assert "ORD-1" in printed and "shipped" in printed and "23.48" in printed
    assert '"product_id": "P2"' in printed
