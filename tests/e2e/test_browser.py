"""What a user sees in a real browser: the numbers, a filter from a link, every page, a safe download."""
from __future__ import annotations

import csv
import io
import re

import pytest

from tests.e2e.helpers import app_pages, screenshot, wait_ready
from tests.trust_helpers import holds_file, ingest, opportunities_csv, state

pytestmark = pytest.mark.e2e
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PAGES = app_pages()


def metrics(tab) -> dict[str, str]:
    """The metric cards on the page: label -> value as shown."""
    cards = tab.locator('[data-testid="stMetric"]')
    out = {}
    for i in range(cards.count()):
        card = cards.nth(i)
        label = card.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        out[label] = card.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return out


def assert_no_error(tab) -> None:
    """No exception box and no "Something went wrong" sentence on the page."""
    errors = tab.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()
    assert "Something went wrong" not in tab.locator('[data-testid="stMain"]').inner_text()


def open_page(tab, url: str) -> None:
    """Load an address and wait until the app has drawn it."""
    tab.goto(url)
    wait_ready(tab)
    assert_no_error(tab)


def test_north_star_shows_numbers_and_the_demo_banner(server, tab):
    """The first page a user opens: the demo banner, the North Star title and cards with real values."""
    open_page(tab, server.url)
    main = tab.locator('[data-testid="stMain"]')
    assert "demo data" in main.inner_text()
    assert tab.locator("h1", has_text="North Star").count() == 1
    cards = metrics(tab)
    assert len(cards) >= 5, cards
    shown = [v for v in cards.values() if re.search(r"\d", v)]
    assert len(shown) >= 5, cards  # numbers, not dashes: the demo has data behind every North Star metric
    assert re.fullmatch(r"\$[\d.,]+[KMB]?", cards["ARR"]), cards["ARR"]


def test_a_filter_in_the_link_changes_the_numbers(server, tab):
    """?segment=Enterprise in the URL selects the segment in the sidebar and changes ARR."""
    open_page(tab, server.url)
    everyone = metrics(tab)["ARR"]
    open_page(tab, f"{server.url}/?segment=Enterprise")
    segment = tab.locator('[data-testid="stMultiSelect"]', has_text="Segment")
    assert "Enterprise" in segment.inner_text()
    enterprise = metrics(tab)["ARR"]
    assert enterprise != everyone, (everyone, enterprise)
    assert "Enterprise" in tab.locator('[data-testid="stMain"]').inner_text()


@pytest.mark.parametrize("file,title", PAGES, ids=[t for _, t in PAGES])
def test_every_page_renders(server, tab, file, title):
    """Each page opens from the sidebar navigation without an error; a full-page screenshot is kept."""
    if title == PAGES[0][1]:
        open_page(tab, server.url)  # a new session: no filter left over from the tests before
    stem = file.removeprefix("pages/").removesuffix(".py")
    tab.locator('[data-testid="stSidebarNavLink"]').filter(has=tab.get_by_text(title, exact=True)).first.click()
    if title != PAGES[0][1]:  # the default page lives at the root address
        tab.wait_for_url(re.compile(rf"/{stem}(\?|$)"))
    wait_ready(tab)
    assert_no_error(tab)
    assert tab.locator('[data-testid="stMain"] h1').count() >= 1
    screenshot(tab, stem)


def test_drill_down_download_is_a_safe_csv(server, tab):
    """The drill-down's Download CSV gives a UTF-8 CSV whose text cells never start like a formula."""
    open_page(tab, server.url)
    button = tab.locator('[data-testid="stDownloadButton"]').first
    with tab.expect_download() as info:
        button.click()
    raw = info.value.path().read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(rows) > 1 and len(rows[0]) > 1
    numbers = re.compile(r"-\d+(\.\d+)?(e-?\d+)?")  # negative numbers stay numbers
    assert not [c for r in rows for c in r if c.startswith(FORMULA_START) and not numbers.fullmatch(c)]


def test_app_releases_the_database_between_runs(server, tab, tmp_path):
    """Once a page is drawn the app holds no lock on the file: a command-line upload goes straight in."""
    open_page(tab, server.url)
    assert not holds_file(server.proc.pid, server.db)
    before = state(server.db)
    done = ingest("opportunities", opportunities_csv(tmp_path / "more.csv", 10, "CLI-"), server.db,
                  REVOPS_LOCK_WAIT_SECONDS="2")
    assert done.returncode == 0, done.stderr
    assert state(server.db)["uploads"] == before["uploads"] + 1
