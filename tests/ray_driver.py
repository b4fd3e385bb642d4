"""A Ray driver for the cluster tests: ``python -m tests.ray_driver SOURCE TARGET ADDRESS``.

Runs every entity of the built-in migration through the Ray cluster at ADDRESS, at the tests'
fixed ``as_of`` (the command line has no such option), so that its result can be compared
with the local executor's in full. Prints the jobs' statuses on a line of
their own, ``jobs: ...`` (Ray writes its own news of a lost node to stdout too).
"""

from __future__ import annotations

import sys
from datetime import datetime

from columnar_etl import pipeline
from columnar_etl.config import DatabaseUrl, RunConfig

AS_OF = datetime(2026, 1, 1)
BATCH_SIZE = 250
WORKERS = 3


def config(source: str, target: str, address: str | None) -> RunConfig:
    """The run both executors make: Ray on ``address``, or the local one when None."""
    return RunConfig(
        source=DatabaseUrl.parse(source, what="source"),
        target=DatabaseUrl.parse(target, what="target"),
        executor="ray" if address else "local",
        ray_address=address,
        batch_size=BATCH_SIZE,
        workers=WORKERS,
        as_of=AS_OF,
    )


def main(argv: list[str]) -> int:
    """Run, print the statuses, exit 0 when every job completed."""
    source, target, address = argv
    results = pipeline.run(config(source, target, address), "all")
    statuses = [r.status for r in results]
    print("jobs:", *statuses)
    return 0 if set(statuses) == {"completed"} else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
