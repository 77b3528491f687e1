"""Runs: the job registry and parameters, a run executed and recorded, schedules and `serve`, timeouts, signals (README, "Jobs and runs")."""
