"""Open an HTML file in Debian's headless Chromium (selenium + chromedriver) and inspect it."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Flags for a closed network and a root user (see the machines' notes): no sandbox, no background traffic.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]


def require_chromium() -> None:
    """Skip where Chromium is not installed, except in CI, whose .ci/run installs it."""
    if CHROMIUM and CHROMEDRIVER:
        return
    if os.environ.get("CI"):
        pytest.fail("chromium / chromedriver not found: .ci/run installs Debian's chromium and chromium-driver")
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")


@contextmanager
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        for flag in [*FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


# Decode every image result of a Snakemake report in the page itself; report width, height and caption.
DECODE_IMAGES = """
const done = arguments[arguments.length - 1];
const entries = Object.entries(results).filter(([path, r]) => r.mime_type.startsWith("image/"));
Promise.all(entries.map(([path, r]) => new Promise(resolve => {
    const img = new Image();
    img.onload = () => resolve({path, width: img.naturalWidth, height: img.naturalHeight, caption: r.caption});
    img.onerror = () => resolve({path, width: 0, height: 0, caption: r.caption});
    img.src = r.data_uri;
}))).then(done);
"""


def _click_text(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//*[normalize-space(text())='{text}']").click()


def _viewed_image(driver, category: str, subcategory: str, filename: str) -> int:
    """Click through the report's menus as a reader would, open `filename` with its eye button, and
    return the natural width of the PNG shown (0: it did not load)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _click_text(driver, category)
    if driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{subcategory}']"):
        _click_text(driver, subcategory)   # (a category with one subcategory lists its files at once)
    driver.find_element(By.XPATH, f"//tr[.//td[contains(text(), '{filename}')]]//a[@iconname='eye']").click()
    return WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "const i = Array.from(document.querySelectorAll('#app img')).find(i => i.src.startsWith('data:image/png'));"
        "return i && i.complete ? i.naturalWidth : null;"))


def snakemake_report(path: Path, view: tuple[str, str, str] | None = None) -> dict:
    """Open a `snakemake --report` file; return what rendered: app text, categories, results, decoded images,
    and with `view` = (category, subcategory, file name) the width of that picture opened through the menus."""
    with chromium() as driver:
        driver.set_script_timeout(60)
        driver.get(Path(path).resolve().as_uri())
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.getElementById('app').innerText.length > 0"))
        shown = {
            "app_text": driver.execute_script("return document.getElementById('app').innerText"),
            "categories": driver.execute_script("return Object.keys(categories)"),
            "results": driver.execute_script(
                "return Object.fromEntries(Object.entries(results).map(([p, r]) => [p, r.mime_type]))"),
            "images": driver.execute_async_script(DECODE_IMAGES),
            # Pictures on the landing page itself (inline images of the workflow description).
            "landing_images": driver.execute_script(
                "return Array.from(document.querySelectorAll('#app img')).map(i => i.complete ? i.naturalWidth : 0)"),
            "errors": [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"],
        }
        if view:
            shown["viewed_width"] = _viewed_image(driver, *view)
        return shown
