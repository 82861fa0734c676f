"""``python -m enrich`` runs the command line."""

from enrich.cli import main

main()
