"""The explorer in a real browser (Debian's chromium and chromium-driver, driven by selenium): clicking the
latent plane decodes a new image. Skips, saying why, where the browser is missing."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install vaekit[serve]")
pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install selenium")

from browser import headless_chromium, missing  # noqa: E402


@pytest.fixture
def browser():
    why = missing()
    if why:
        pytest.skip(why)
    with headless_chromium() as driver:
        yield driver


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def test_clicking_the_plane_decodes_a_new_image(browser, zoo_run):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from vaekit.serve.server import ServerThread, torch_app

    token = "browser-test-token"
    with ServerThread(torch_app(zoo_run("vae"), token=token, map_points=300)) as url:
        browser.get(f"{url}/#token={token}")  # the fragment never reaches the server: the page sends it as a header
        wait = WebDriverWait(browser, 20)
        decodes = lambda: int(browser.find_element(By.ID, "decoded").get_attribute("data-decodes") or 0)  # noqa: E731
        wait.until(lambda _: decodes() >= 1)
        image, plane = browser.find_element(By.ID, "decoded"), browser.find_element(By.ID, "plane")
        before = pixels(image.screenshot_as_png)
        shots = []
        for dx, dy in [(-190, -190), (190, 190)]:  # two far corners of the plane, away from the data's dots
            count = decodes()
            ActionChains(browser).move_to_element_with_offset(plane, dx, dy).click().perform()
            wait.until(lambda _: decodes() > count)
            shots.append(pixels(image.screenshot_as_png))
        assert browser.find_element(By.ID, "error").text == ""
        for shot in [before, *shots]:
            assert shot.std() > 5, "the decoded image is blank"
        assert np.abs(shots[0] - shots[1]).mean() > 2, "clicking elsewhere on the plane did not change the image"
        if os.environ.get("VAEKIT_SCREENSHOT"):  # docs/serve-explorer.png: VAEKIT_SCREENSHOT=docs/serve-explorer.png
            browser.save_screenshot(os.environ["VAEKIT_SCREENSHOT"])
