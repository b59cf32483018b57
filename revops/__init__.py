"""RevOps cockpit library: canonical tables, ingest, metrics, funnel, handoffs, forecasts."""
import os

# Polars allocates through jemalloc and by default keeps freed pages for 0.5-1 s before giving them back
# (polars/__init__.py appends this setting to its own, so it wins). The cockpit computes in bursts over
# tables of hundreds of megabytes, and within a burst those kept pages add up: handing them back at once
# keeps the process's peak resident memory near what it really holds (1M deals: about 100 MB lower, same
# CPU time). It must be set before Polars loads; an explicit setting in the environment wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
