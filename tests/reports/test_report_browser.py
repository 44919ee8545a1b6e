"""report.html in a real headless browser (Debian's chromium + chromedriver): it loads with no
console errors, with no network, and every plot renders (a non-blank screenshot of each plot
area). The session is recorded live through the simulated IB gateway with known differences, so
the parity, attribution, slippage and latency plots are all on the page."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ml4t_live.reports import report
from ml4t_live.sim.ib import SimulatedIBGateway
from tests.support.known_session import N_BARS, TARGET, only_session

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; "
    ".ci/run installs them)",
)

PLOTS = ("plot-equity", "plot-attribution", "plot-slippage", "plot-pnl-by-asset", "plot-positions",
         "plot-prices", "plot-latency")  # fmt: skip


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--proxy-server=127.0.0.1:9"):  # no network: a fetch fails
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(DRIVER)), options=options)


def _distinct_colours(png: bytes) -> int:
    from PIL import Image

    pixels = Image.open(io.BytesIO(png)).convert("RGB").resize((200, 80)).tobytes()
    return len({pixels[i:i + 3] for i in range(0, len(pixels), 3)})


def _venue_session(cli, bars_file, tmp_path) -> Path:
    faults = [{"kind": "reject_next", "reason": "insufficient margin"},
              {"kind": "partial_fill", "at_bar": 7, "parts": 2}]  # fmt: skip
    sim = SimulatedIBGateway(bars_file, faults=faults)
    sim.start()
    try:
        run = cli("run", TARGET, "--broker", "ib", "--port", sim.port, "--symbols", "AAPL,MSFT",
                  "--bar-size", "1min", "--max-bars", N_BARS - 1, "--session-dir", tmp_path / "runs")  # fmt: skip
    finally:
        sim.close()
    assert run.exit_code == 0, run.output
    return only_session(tmp_path / "runs")


def test_the_report_renders_in_chromium_with_no_console_errors(cli, bars_file, tmp_path):
    files = report(_venue_session(cli, bars_file, tmp_path))
    from selenium.webdriver.common.by import By

    driver = _browser()
    try:
        driver.get(files.html.resolve().as_uri())
        driver.find_element(By.CSS_SELECTOR, "#plot-equity .main-svg")  # plotly drew into it
        problems = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert not problems, problems
        for plot in PLOTS:
            element = driver.find_element(By.ID, plot)
            driver.execute_script("arguments[0].scrollIntoView()", element)
            shot = element.screenshot_as_png
            (tmp_path / f"{plot}.png").write_bytes(shot)
            assert element.size["height"] > 250, plot
            assert element.find_elements(By.CSS_SELECTOR, ".main-svg"), plot
            # a blank (white) area has one or two colours; lines, bars, axes and text have many
            assert _distinct_colours(shot) > 20, plot
        assert "parity 40.0%" in driver.find_element(By.CSS_SELECTOR, ".banner").text
        # the orders table filters as one types
        box = driver.find_element(By.CSS_SELECTOR, "input.filter[oninput*='orders']")
        box.send_keys("rejected")
        shown = [r for r in driver.find_elements(By.CSS_SELECTOR, "#orders tbody tr") if r.is_displayed()]
        assert len(shown) == 1 and "insufficient margin" in shown[0].text
    finally:
        driver.quit()
