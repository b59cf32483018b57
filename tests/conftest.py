"""Shared fixtures; in CI (REVOPS_REQUIRE_E2E=1) a skipped e2e test fails the run."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "fixtures" / "real"

_skipped_e2e: list[str] = []


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    """Every test gets its own DuckDB file, never the user's data/revops.duckdb."""
    monkeypatch.setenv("REVOPS_DB", str(tmp_path / "revops.duckdb"))


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    """One small demo company per test module (building it is the slow part)."""
    from revops.demo import build_demo
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(path, seed=7, scale=1500)
    return path


@pytest.fixture
def demo_db(demo_file, monkeypatch) -> Path:
    """Point the app (REVOPS_DB) at the module's demo file."""
    monkeypatch.setenv("REVOPS_DB", str(demo_file))
    return demo_file


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The real public fixtures beside the project (../shared/fixtures/real)."""
    if not REAL.exists():
        pytest.fail(f"{REAL} is missing: clone the project with ../shared beside it")
    return REAL


def pytest_runtest_logreport(report):
    if report.skipped and "e2e" in report.keywords:
        _skipped_e2e.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("REVOPS_REQUIRE_E2E") == "1" and _skipped_e2e:
        print(f"\n{len(_skipped_e2e)} e2e test(s) skipped but CI requires them: {_skipped_e2e[:5]}")
        session.exitstatus = 1
