"""The report in a real browser: images load, markup in data stays text, the page is drawn.

Headless Chromium from Debian's packages (`chromium`, `chromium-driver`) through selenium,
with the driver path given so that selenium-manager never downloads anything.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from reports import frame, html
from reports.tests.conftest import HOSTILE, published_records, report_records, write

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,2400")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)")


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """A fresh headless Chromium with its own profile, quit whatever the test does."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must not reach the network
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_in_chromium(browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    records = [*report_records(), *published_records({("add", "nac"): [False] * 4,
                                                      ("add", "nau"): [True] * 4})]
    df, curves = frame.read(write(records, tmp_path / "results"))
    out = html.render(df, tmp_path / "report" / "report.html", curves=curves)
    browser.get(out.as_uri())

    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 6
    for img in images:
        natural, shown = browser.execute_script(
            "return [arguments[0].complete && arguments[0].naturalWidth, "
            "arguments[0].getBoundingClientRect().width]", img)
        assert natural and natural > 0 and img.is_displayed(), img.get_attribute("alt")
        assert shown == natural, img.get_attribute("alt")  # drawn at its size: labels legible

    assert HOSTILE in browser.find_element(By.TAG_NAME, "body").text  # shown as text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018  (reading it is the check)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []

    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(browser.get_screenshot_as_png()), format="png")
    assert pixels.shape[0] > 100 and np.std(pixels[..., :3]) > 0.02  # not a blank page


def test_scoreboard_and_fidelity_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By

    records = [*report_records(), *published_records({("add", "nac"): [False] * 4,
                                                      ("add", "nau"): [True] * 4})]
    df, curves = frame.read(write(records, tmp_path / "results"))
    browser.get(html.render(df, tmp_path / "report.html", curves=curves).as_uri())

    board = browser.find_element(By.ID, "scoreboard")
    top = browser.execute_script("return arguments[0].getBoundingClientRect().top", board)
    assert board.is_displayed() and top < 600  # the first thing below the contents
    assert board.find_element(By.TAG_NAME, "img").is_displayed()
    # rows are ranked by success, then normalised error: nau (4 of 4) above nac (0 of 4)
    models = [r.find_element(By.TAG_NAME, "td").text
              for r in board.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert models.index("nau") < models.index("nac"), models
    cell = board.find_element(By.XPATH, ".//tr[td[1]='nac']/td[contains(@class, 'limited')]")
    assert cell.text.startswith("0% †\n[0%, 49%]")
    assert "budget shorter" in cell.get_attribute("title")
    assert browser.execute_script(  # the table beneath fits the page: no sideways scrolling
        "const w = arguments[0].querySelector('.wide'); return w.scrollWidth <= w.clientWidth",
        board)
    hatched = browser.execute_script(
        "return getComputedStyle(arguments[0]).backgroundImage", cell)
    assert "repeating-linear-gradient" in hatched

    board.find_element(By.LINK_TEXT, "static_arithmetic add extrapolation_range=[2,6]").click()
    assert browser.current_url.endswith("#task-static_arithmetic")
    section = browser.find_element(By.ID, "task-static_arithmetic")
    assert abs(browser.execute_script(
        "return arguments[0].getBoundingClientRect().top", section)) < 2  # scrolled to it

    browser.find_element(By.CSS_SELECTOR, "nav.contents").find_element(
        By.LINK_TEXT, "Fidelity to the published results").click()
    table = browser.find_element(By.CSS_SELECTOR, "table.fidelity")
    assert table.is_displayed() and browser.execute_script(
        "const w = arguments[0].parentElement; return w.scrollWidth <= w.clientWidth", table)
    verdicts = [td.text for td in table.find_elements(By.CSS_SELECTOR, "td.verdict")]
    assert verdicts == ["budget too short", "agrees"]  # add NAC+, then add NAU, as published
    colour = browser.execute_script("return getComputedStyle(arguments[0]).color",
                                    table.find_element(By.CSS_SELECTOR, "td.verdict"))
    assert colour != browser.execute_script(
        "return getComputedStyle(document.body).color")  # a verdict stands out

    details = browser.find_element(By.TAG_NAME, "details")
    hidden = details.find_element(By.TAG_NAME, "table")
    assert not hidden.is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert hidden.is_displayed() and "not in the suite" in hidden.text
