"""The benchmark at scale: `python -m revops bench` (see bench/run.py)."""
