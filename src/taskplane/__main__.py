"""``python -m taskplane`` runs the CLI."""

from taskplane.cli.main import main

main()
