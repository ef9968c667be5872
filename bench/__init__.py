"""`make bench`: LogLab's performance figures, each beside a baseline measured in the same run.

Benchmarks, not tests: they report targets met or missed and exit 0 unless a benchmark itself
crashed. Everything runs on loopback against a scratch SQLite database in a temp dir, except
`scale`, which runs two server processes on a PostgreSQL database and a redis-server of its own
(bench/deploy.py); the servers started are stopped at the end. See docs/benchmarks.md for the
method and results. `make soak` (bench/soak.py) is the reliability run: docs/reliability.md.
"""
