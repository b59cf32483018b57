"""Run one command in a child process; print its wall time and peak resident memory as JSON.

    python -m bench.measure -- CMD ARGS...   ->   {"seconds": …, "max_rss_mb": …, "returncode": …}

A fresh process per measurement, so the kernel's peak-RSS counter of its children is exactly the command's.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    cmd = argv[argv.index("--") + 1:] if "--" in argv else argv
    started = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"seconds": seconds, "max_rss_mb": peak_kb / 1024, "returncode": done.returncode,
                      "stdout": done.stdout, "stderr": done.stderr[-2000:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
