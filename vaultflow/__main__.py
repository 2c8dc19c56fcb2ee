"""``python -m vaultflow``: the same as the ``vaultflow`` command."""

from vaultflow.cli import main

main()
