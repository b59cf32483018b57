"""Time the app's pages with Streamlit's AppTest, in a process of their own; print the timings as JSON.

    python -m bench.pages DB PAGE [PAGE ...]        first render and reruns of each page
    python -m bench.pages DB --memory PAGE ...      the same, all pages in one process: its peak RSS

What "first render" means here: the app process has already read the data once (an earlier session
ran the shared sidebar and read every table a page reads into the process cache), and the page has
computed nothing yet: its results are cold. That is a user opening a page of a cockpit that is already up. The time of
that earlier read is reported apart ("data load"). A rerun is the same session after one sidebar
filter changes (a filter combination not seen before, so nothing of it is cached), and on the Forecast
page after one lever slider moves.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 900.0

# The app has read the data once: the shared sidebar ran and every table a page reads is in the process
# cache (touches are read by no page: data quality counts their cells where they are stored).
WARM = """
from revops.schema import TABLES
from ui import sidebar, state
state.ensure_data()
sidebar.render()
data = state.all_frames()
for name in TABLES:
    if name != "touches":
        data.table(name)
data.snapshots
"""


def _timed(at) -> float:  # noqa: ANN001
    started = time.perf_counter()
    at.run(timeout=TIMEOUT)
    return time.perf_counter() - started


def _rss_mb() -> float:
    """Resident memory of this process now."""
    import psutil
    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    """The process's peak resident memory so far (which page raised it shows where the peak is)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _errors(at) -> list[str]:  # noqa: ANN001
    return [str(e.value)[:300] for e in at.exception] + [str(e.value)[:300] for e in at.error]


def _set_first(at, key: str) -> bool:  # noqa: ANN001
    """Pick the first option of a sidebar multiselect; False when it has none."""
    widget = next((w for w in at.multiselect if w.key == key), None)
    if widget is None or not widget.options:
        return False
    widget.set_value([widget.options[0]])
    return True


def _move_slider(at) -> str | None:  # noqa: ANN001
    """Move the first lever slider of the Forecast page by a tenth of its range; its key."""
    slider = next((s for s in at.slider if str(s.key).startswith("fc_")), None)
    if slider is None:
        return None
    span = float(slider.max) - float(slider.min)
    step = float(slider.step or 0) or span / 100
    value = min(float(slider.value) + max(span / 10, step), float(slider.max))
    if value == float(slider.value):
        value = max(float(slider.min), float(slider.value) - max(span / 10, step))
    slider.set_value(round(value / step) * step if step else value)
    return str(slider.key)


def time_page(page: str) -> dict:
    """First render, rerun after a segment filter, after a region filter too, and (Forecast) after a slider move."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page(page)
    out: dict = {"page": page, "first_render": _timed(at), "errors": _errors(at), "rss_mb": {}, "peak_mb": {}}
    out["rss_mb"]["first_render"], out["peak_mb"]["first_render"] = _rss_mb(), _peak_mb()
    for key in ("segment", "region"):
        if _set_first(at, key):
            out[f"rerun_{key}_filter"] = _timed(at)
            out["errors"] += _errors(at)
            out["rss_mb"][f"{key}_filter"], out["peak_mb"][f"{key}_filter"] = _rss_mb(), _peak_mb()
    if page.endswith("forecast.py"):
        moved = _move_slider(at)
        if moved:
            out["rerun_slider"] = _timed(at)
            out["slider"] = moved
            out["errors"] += _errors(at)
    return out


def main(argv: list[str]) -> int:
    db, rest = argv[0], argv[1:]
    memory = "--memory" in rest
    pages = [p for p in rest if p != "--memory"]
    os.environ["REVOPS_DB"] = str(Path(db).resolve())
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import logging
    logging.disable(logging.WARNING)  # AppTest's "missing ScriptRunContext" noise
    from streamlit.testing.v1 import AppTest
    warm = AppTest.from_string(WARM, default_timeout=TIMEOUT)
    load = _timed(warm)
    results = []
    for p in pages:
        results.append(time_page(p))
        if memory:  # where the memory goes, page by page
            print(f"{p}: now {results[-1]['rss_mb']}, peak so far {results[-1]['peak_mb']}", file=sys.stderr, flush=True)
    report = {"data_load": load, "pages": results,
              "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if memory else None}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
