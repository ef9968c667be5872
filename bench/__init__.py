"""`make bench`: LogLab's performance figures, each beside a baseline measured in the same run.

Benchmarks, not tests: they report targets met or missed and exit 0 unless a benchmark itself
crashed. Everything runs on loopback against a scratch SQLite database in a temp dir; the
servers started are stopped at the end. See docs/benchmarks.md for the method and results.
"""
