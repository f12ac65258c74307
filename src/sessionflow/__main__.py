"""``python -m sessionflow``: the same command line as ``sessionflow``."""

from sessionflow.cli.app import main

main()
