"""Uploading in a real browser: preview, a safe rejects download, load, and the new numbers on another page."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from revops.format import format_value
from revops.metrics.registry import REGISTRY, Metric
from tests.e2e.helpers import screenshot, wait_ready
from tests.trust_helpers import run_revops

pytestmark = pytest.mark.e2e
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
FORMULA = "=cmd|' /C calc'!A0"
# Three open deals (1,000 + 2,000 + 3,000 = 6,000 of open pipeline) and one row whose amount is not a number.
ROWS = [
    ["Opportunity ID", "Opportunity Name", "Stage", "Amount", "Created Date", "Close Date"],
    ["E2E-1", SCRIPT, "Prospecting", "1000", "2026-01-05", "2026-12-20"],
    ["E2E-2", IMG, "Proposal", "$2,000.00", "2026-02-10", "2026-12-21"],
    ["E2E-3", "Plain deal", "Negotiation", "3000", "2026-03-15", "2026-12-22"],
    ["E2E-4", FORMULA, "Proposal", "abc", "2026-03-16", "2026-12-23"],
]
OPEN_PIPELINE = 1000 + 2000 + 3000


def _metric(metric_id: str) -> Metric:
    return next(m for m in REGISTRY if m.id == metric_id)


def _csv() -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(ROWS)
    return buf.getvalue().encode("utf-8")


def _card(tab, label: str) -> str:
    card = tab.locator('[data-testid="stMetric"]').filter(
        has=tab.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
    return card.locator('[data-testid="stMetricValue"]').first.inner_text().strip()


def test_upload_preview_rejects_load_and_new_numbers(server, tab):
    """Upload a CSV on the Data page, see the preview, download the rejects, load, see the new pipeline."""
    tab.goto(f"{server.url}/data")
    wait_ready(tab)
    tab.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        {"name": f"{IMG}.csv", "mimeType": "text/csv", "buffer": _csv()})
    tab.get_by_text("Rows to load", exact=True).wait_for()
    wait_ready(tab)
    assert _card(tab, "Rows read") == "4"
    assert _card(tab, "Rows to load") == "3"
    assert _card(tab, "Rows rejected") == "1"
    screenshot(tab, "data_preview")

    with tab.expect_download() as info:
        tab.get_by_role("button", name=re.compile("Download the rejected rows")).click()
    rejects = list(csv.DictReader(io.StringIO(info.value.path().read_bytes().decode("utf-8-sig"), newline="")))
    assert [r["Opportunity ID"] for r in rejects] == ["E2E-4"]
    assert rejects[0]["Opportunity Name"] == "'" + FORMULA  # a spreadsheet shows it as text, never runs it
    assert "amount" in rejects[0]["error"].lower()

    tab.get_by_role("button", name=re.compile(r"^Load 3 rows into opportunities")).click()
    tab.get_by_text(re.compile(r"loaded 3 rows into opportunities")).wait_for()
    wait_ready(tab)
    assert tab.locator('img[src="x"]').count() == 0

    report = run_revops("metrics", "--db", str(server.db), "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["metrics"]["open_pipeline"]["value"] == OPEN_PIPELINE

    tab.goto(f"{server.url}/operational")
    wait_ready(tab)
    assert "demo data" not in tab.locator('[data-testid="stMain"]').inner_text()  # the demo made way for real data
    pipeline = _metric("open_pipeline")
    assert _card(tab, pipeline.label) == format_value(OPEN_PIPELINE, pipeline.unit)
    screenshot(tab, "operational_after_upload")


def test_uploaded_markup_stays_text_in_the_browser(server, tab):
    """The upload log shows the file name <img src=x onerror=…> as text: no image element, no alert."""
    tab.goto(f"{server.url}/data")
    wait_ready(tab)
    tab.get_by_role("tab", name="Uploads").click()
    tab.get_by_text(f"{IMG}.csv", exact=False).first.wait_for()
    assert tab.locator('img[src="x"]').count() == 0
    assert tab.locator("script", has_text="alert(1)").count() == 0
