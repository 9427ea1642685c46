"""Benchmarks: `python -m benchmarks` runs the suite (see __main__.py); they print numbers, tests assert behaviour."""
