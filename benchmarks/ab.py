"""Before and after: ``etl run --entity orders`` of two revisions, interleaved, on one source.

    python benchmarks/ab.py --before e13c36c~1 --orders 2000000 --repeat 3

One private PostgreSQL (tests/pgserver.py), one generated legacy database; each run loads a
cold (new, empty) target database. The runs alternate A B B A A B ..., so drift on a shared
machine hits both alike. ``--before`` is a git revision, unpacked (``git archive``) into a
temporary folder; ``--after`` is the working tree unless given. Both must give the same
counts, else the comparison is void and the script says so. Reported: the median wall time,
CPU and peak RSS of each, and after/before ratios. Writes benchmarks/results/ab.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, Bench, EtlRun, machine, median, save_json


def unpack(revision: str, folder: Path) -> Path:
    """The package source of ``revision`` (with its DDL where the package finds it), as a
    folder to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "archive", revision, "src", "schemas"], cwd=ROOT, capture_output=True, check=True
    )
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    (folder / "src" / "columnar_etl" / "schemas").symlink_to(folder / "schemas")
    return folder / "src"


def summary(runs: list[EtlRun]) -> dict[str, Any]:
    return {
        "seconds": median([r.seconds for r in runs]),
        "client_cpu_s": median([r.client_cpu_s for r in runs]),
        "server_cpu_s": median([r.server_cpu_s for r in runs]),
        "peak_rss_mib": median([r.peak_rss_mib for r in runs]),
        "all_seconds": [round(r.seconds, 2) for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="git revision A")
    parser.add_argument("--after", default=None, help="git revision B (default: working tree)")
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Bench() as bench:
        before = unpack(args.before, Path(tmp, "before").resolve())
        after = ROOT / "src"
        if args.after:
            after = unpack(args.after, Path(tmp, "after").resolve())
        source, generated = bench.legacy(args.orders)
        print(f"generated {args.orders:,} legacy orders in {generated:.1f} s")
        runs: dict[str, list[EtlRun]] = {"before": [], "after": []}
        pairs = [("before", before), ("after", after)]
        for i in range(args.repeat):
            for label, src in pairs if i % 2 == 0 else pairs[::-1]:
                with bench.cold_target(label) as target:
                    run = bench.etl(source, target, src=src)
                if run.returncode != 0:
                    raise SystemExit(f"{label} run failed: {run.stderr}")
                runs[label].append(run)
                rss = run.peak_rss_mib
                print(f"{label:>6}: {run.seconds:6.2f} s  {rss:6.0f} MiB  {run.counts}")
        if runs["before"][0].counts != runs["after"][0].counts:
            raise SystemExit("the two revisions gave different counts: no comparison")
        result = {name: summary(found) for name, found in runs.items()}
        ratios = {
            key: result["after"][key] / result["before"][key]
            for key in ("seconds", "client_cpu_s", "server_cpu_s", "peak_rss_mib")
        }
        print("after/before, medians: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
        data = {
            **machine(),
            "command": " ".join(["python", "benchmarks/ab.py", *sys.argv[1:]]),
            "before": args.before,
            "after": args.after or "working tree",
            "orders": args.orders,
            "counts": runs["after"][0].counts,
            **result,
            "ratios_after_over_before": ratios,
        }
        print(f"wrote {save_json('ab', data)}")


if __name__ == "__main__":
    main()
