"""End to end in a real browser: Chromium (Debian package) driven by Playwright against
``streamlit run`` on the shipped default model. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow  # a real browser against a real server

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Chromium is not installed (.ci/run installs Debian's chromium)", allow_module_level=True
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "MAM_MODELS_DIR": str(tmp_path_factory.mktemp("store"))}
    env.pop("MAM_DEFAULT_MODEL", None)  # the shipped model
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app" / "main.py"),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("streamlit did not become healthy in 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def page(app_url):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-quic",
                "--disable-sync",
            ],
        )
        pg = browser.new_page(viewport={"width": 1400, "height": 1800})
        pg.set_default_timeout(90_000)
        yield pg
        browser.close()


PAGES = {
    "": "MaM Studio",
    "design": "Design molecules",
    "likelihood": "Likelihood",
    "finetune": "Fine-tune towards a reward",
    "models": "Models",
    "ising": "Ising lattice",
}


def test_deep_links_open_every_page(page, app_url):
    for path, title in PAGES.items():
        page.goto(f"{app_url}/{path}")
        page.get_by_role("heading", name=title).first.wait_for()
        page.wait_for_timeout(500)  # a "Page not found" notice would arrive with the page
        assert page.get_by_text("Page not found").count() == 0, path
        assert page.locator("[data-testid='stException']").count() == 0, path


def test_design_pasted_fragment_generates_highlighted_molecules(page, app_url):
    page.goto(f"{app_url}/design")
    box = page.get_by_label("Fragment (SMILES with attachment points, optional)", exact=True).and_(
        page.locator("input")
    )
    box.fill("[*]c1ccccc1")
    box.press("Enter")  # commit the text input (it sits outside the form and reruns the page)
    page.get_by_text("motif extension").first.wait_for()
    page.get_by_text("1 attachment point").first.wait_for()
    page.get_by_role("button", name="Generate").click()
    grid = page.locator("[data-testid='stImage'] img")
    try:
        page.get_by_text("contain the fragment").first.wait_for()
        grid.first.wait_for()
        page.locator("[data-testid='stDataFrame']").first.wait_for()
    finally:
        page.screenshot(path=str(ARTIFACTS / "design.png"), full_page=True)
    assert grid.count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0

    # The molecule editor shows the pasted fragment; Apply sends it back as a fragment.
    editor = page.frame_locator("iframe[title*='ketcher']").first
    for _ in range(30):
        editor.get_by_role("button", name="Apply").click()
        page.wait_for_timeout(1000)
        if box.input_value() == "*c1ccccc1":
            break
    page.screenshot(path=str(ARTIFACTS / "design_editor.png"), full_page=True)
    assert box.input_value() == "*c1ccccc1"  # the attachment point survived the editor


def test_likelihood_scores_pasted_smiles(page, app_url):
    page.goto(f"{app_url}/likelihood")
    page.get_by_role("button", name="Score").click()
    page.get_by_text("MaM (one pass)").first.wait_for()
    page.get_by_text("Speed-up").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "likelihood.png"), full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0
