#!/usr/bin/env python3
"""`python runner.py ...` from a checkout: the commands live in the package (batchrunner.cli.main), installed as `runner`."""

from batchrunner.cli.main import cli, main  # noqa: F401  (cli: what tests and tools invoke)

if __name__ == "__main__":
    main()
