"""The runner's core: configuration, database, tokens, API session, jobs, runs, scheduler."""

__version__ = "0.1.0"
