"""dlt's fastest documented path from one PostgreSQL table into another database; run by
benchmarks/peers.py with the interpreter of its own virtualenv (dlt is never a dependency of
this project, so nothing here imports columnar_etl).

    python peers_dlt.py SOURCE_URL TARGET_URL TABLE DATASET PIPELINES_DIR

* extract: ``sql_table`` with the connectorx backend, ``return_type="arrow_stream"``: Arrow
  batches streamed from the source (binary protocol), never a Python row;
* normalize: the Arrow batches written as parquet loader files;
* load: parquet into PostgreSQL through ADBC (dlt picks ADBC for parquet when
  ``adbc-driver-postgresql`` is installed).

Prints one JSON line: the rows dlt says it normalised and the loader file formats it used.
"""

from __future__ import annotations

import json
import sys

import dlt
from dlt.sources.sql_database import sql_table


def main() -> None:
    source_url, target_url, table, dataset, pipelines_dir = sys.argv[1:6]
    # SQLAlchemy reflects the table through psycopg2, the driver dlt[postgres] installs;
    # dlt strips the driver from the URL it hands connectorx.
    resource = sql_table(
        credentials=source_url.replace("postgresql://", "postgresql+psycopg2://", 1),
        table=table,
        backend="connectorx",
        backend_kwargs={"return_type": "arrow_stream"},
    )
    pipeline = dlt.pipeline(
        pipeline_name="peers",
        destination=dlt.destinations.postgres(credentials=target_url),
        dataset_name=dataset,
        pipelines_dir=pipelines_dir,
    )
    info = pipeline.run(resource, loader_file_format="parquet")
    # Parquet is only offered for postgres when the ADBC driver is installed: a parquet job
    # for the table is an ADBC load.
    jobs = [job for package in info.load_packages for job in package.jobs["completed_jobs"]]
    formats = sorted(
        {j.job_file_info.file_format for j in jobs if j.job_file_info.table_name == table}
    )
    rows = pipeline.last_trace.last_normalize_info.row_counts.get(table, 0)
    print(json.dumps({"rows": rows, "loader_file_formats": formats}))


if __name__ == "__main__":
    main()
