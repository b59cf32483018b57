"""python -m revops: the command line."""
import os
import sys

# Polars' allocator (jemalloc) keeps freed pages for seconds by default; a one-shot command over a big
# export peaks far lower when they go back at once. Read when Polars loads, so set before any import of it.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

from revops.cli import main  # noqa: E402  (after the allocator setting)

sys.exit(main())
