"""columnar-etl: columnar, bounded-memory legacy database migration."""
