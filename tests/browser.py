"""Headless Debian chromium driven by selenium: the browser tests and the README's screenshots start it here."""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator, Optional

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
# on a closed network chromium's background connections fail at every start; these flags keep it quiet
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


def missing() -> Optional[str]:
    """Why no browser can start here, or None."""
    if not (CHROMIUM and DRIVER):
        return "chromium or chromedriver is missing: apt-get install -y chromium chromium-driver (.ci/run does)"
    return None


@contextmanager
def headless_chromium(window: str = "1100,760") -> Iterator:
    """A selenium driver of headless chromium with a fresh profile, quit (and its profile removed) at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="vaekit-chromium-")
    for flag in (*FLAGS, f"--window-size={window}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
