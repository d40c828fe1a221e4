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
from reports.tests.conftest import HOSTILE, report_records, write

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

    df, curves = frame.read(write(report_records(), tmp_path / "results"))
    out = html.render(df, tmp_path / "report" / "report.html", curves=curves)
    browser.get(out.as_uri())

    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 4
    for img in images:
        loaded = browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", img)
        assert loaded and loaded > 0 and img.is_displayed(), img.get_attribute("alt")

    assert HOSTILE in browser.find_element(By.TAG_NAME, "body").text  # shown as text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018  (reading it is the check)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []

    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(browser.get_screenshot_as_png()), format="png")
    assert pixels.shape[0] > 100 and np.std(pixels[..., :3]) > 0.02  # not a blank page
