"""``python -m columnar_etl`` runs the ``etl`` command."""

from columnar_etl.launch import main

main()
