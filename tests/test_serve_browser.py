"""The explorer in a real browser (Debian's chromium and chromium-driver, driven by selenium, one start for
the file): clicking the latent plane decodes a new image, a CVAE's label selector changes it, a latent map
gets its channel view. Skips, saying why, where the browser is missing."""
from __future__ import annotations

import io
import os
from importlib.util import find_spec

import numpy as np
import pytest

# found, not imported (at collection every worker would pay for fastapi and selenium)
pytestmark = [pytest.mark.skipif(not find_spec("fastapi"), reason="the serve extra is not installed: pip install "
                                 "vaekit[serve]"),
              pytest.mark.skipif(not find_spec("selenium"), reason="selenium is not installed: pip install selenium")]

from browser import headless_chromium, missing  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    why = missing()
    if why:
        pytest.skip(why)
    with headless_chromium() as driver:
        yield driver


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def opened(browser, url: str):
    """The explorer at ``url`` once its first decode is drawn: (wait, decodes() -> how many decodes so far)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    wait = WebDriverWait(browser, 20)
    decodes = lambda: int(browser.find_element(By.ID, "decoded").get_attribute("data-decodes") or 0)  # noqa: E731
    wait.until(lambda _: decodes() >= 1)
    return wait, decodes


def test_clicking_the_plane_decodes_a_new_image(browser, zoo_run):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from vaekit.serve.server import ServerThread, torch_app

    token = "browser-test-token"
    with ServerThread(torch_app(zoo_run("vae"), token=token, map_points=300)) as url:
        # the fragment never reaches the server: the page sends it as a header
        wait, decodes = opened(browser, f"{url}/#token={token}")
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


def test_a_cvaes_label_selector_changes_the_decoded_image(browser, zoo_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from vaekit.serve.server import ServerThread, torch_app

    with ServerThread(torch_app(zoo_run("cvae"), map_points=100)) as url:
        wait, decodes = opened(browser, url)
        image, selector = browser.find_element(By.ID, "decoded"), Select(browser.find_element(By.ID, "label"))
        assert browser.find_element(By.ID, "labelrow").is_displayed() and len(selector.options) == 10
        assert selector.first_selected_option.get_attribute("value") == "0"
        shots = {"0": pixels(image.screenshot_as_png)}
        for label in ("1", "7"):  # the same code, decoded under other labels
            count = decodes()
            selector.select_by_value(label)
            wait.until(lambda _: decodes() > count)
            shots[label] = pixels(image.screenshot_as_png)
        assert browser.find_element(By.ID, "error").text == ""
        assert min(shot.std() for shot in shots.values()) > 5, "the decoded image is blank"
        for label in ("1", "7"):
            assert np.abs(shots[label] - shots["0"]).mean() > 2, f"label {label} did not change the decoded image"


def test_a_latent_map_gets_its_channel_view(browser, tmp_path):
    """A resnet with a 2 x 4 x 4 latent map (untrained: the view needs no training): a heat map per channel."""
    import torch
    from selenium.webdriver.common.by import By

    from vaekit.app.options import apply_options, base_config
    from vaekit.data.types import DataInfo
    from vaekit.models import build_model
    from vaekit.run import Run
    from vaekit.serve.app import make_app
    from vaekit.serve.explorer import latent_map
    from vaekit.serve.server import ServerThread
    from vaekit.serve.torch_backend import TorchBackend

    cfg = apply_options(base_config(), {"network": "resnet", "widths": [8, 16], "blocks": 1, "latent_channels": 2})
    cfg.model.data_shape = [1, 8, 8]
    torch.manual_seed(0)
    info = DataInfo("tiny", "image", (1, 8, 8))
    backend = TorchBackend(Run(tmp_path, cfg, build_model(cfg.model).eval(), info))
    x = np.random.default_rng(0).random((50, 1, 8, 8), dtype=np.float32)
    with ServerThread(make_app(backend, points=latent_map(backend, x, None))) as url:
        opened(browser, url)
        assert "2x4x4 map" in browser.find_element(By.ID, "note").text
        channels = browser.find_elements(By.CSS_SELECTOR, "#channels canvas")
        assert [(c.get_attribute("width"), c.get_attribute("height")) for c in channels] == [("4", "4")] * 2
        heat = browser.execute_script(  # the blue channel of each canvas's 16 cells
            "return [...document.querySelectorAll('#channels canvas')].map(c => "
            "Array.from(c.getContext('2d').getImageData(0, 0, 4, 4).data).filter((_, i) => i % 4 == 2))")
        assert all(np.std(cells) > 0 for cells in heat), "a channel's heat map is flat"
        assert browser.find_element(By.ID, "error").text == ""
