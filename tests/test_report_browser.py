"""The report in a real browser (Debian's chromium and chromium-driver, driven by selenium): hovering a
point of the latent map shows its thumbnail, and the page's screenshot is not blank. Skips, saying why,
where the browser or selenium is missing."""
import io
import shutil

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,900")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium or chromedriver is missing: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


def test_latent_map_shows_a_thumbnail_on_hover(mlp_run, tmp_path, browser):
    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from vaekit.report import write_report

    run = tmp_path / "mlp"
    shutil.copytree(mlp_run, run)
    page = write_report([run], str(tmp_path / "report.html"))
    browser.get(page.resolve().as_uri())
    tip = browser.find_element(By.ID, "tip-img")
    assert not tip.is_displayed()
    hover = "arguments[0].scrollIntoView({block: 'center'});"
    dot = browser.find_element(By.CSS_SELECTOR, "svg.map circle[data-t]")
    browser.execute_script(hover, dot)
    ActionChains(browser).move_to_element(dot).perform()
    WebDriverWait(browser, 5).until(lambda d: tip.is_displayed())
    assert tip.get_attribute("src").startswith("data:image/png;base64,")
    assert "class" in browser.find_element(By.ID, "tip-text").text
    point = browser.find_element(By.CSS_SELECTOR, "svg.curve circle.pt")  # a curve's point shows its value
    browser.execute_script(hover, point)
    ActionChains(browser).move_to_element(point).perform()
    WebDriverWait(browser, 5).until(lambda d: "epoch" in d.find_element(By.ID, "tip-text").text)
    assert not tip.is_displayed()
    browser.execute_script(hover, dot)
    ActionChains(browser).move_to_element(dot).perform()
    WebDriverWait(browser, 5).until(lambda d: tip.is_displayed())
    shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("L"), dtype=float)
    assert shot.std() > 10 and len(np.unique(shot)) > 20, "the screenshot is blank"
    thumb = browser.execute_script(  # the thumbnail itself drew pixels: not one flat colour
        "var i=document.getElementById('tip-img'),c=document.createElement('canvas');c.width=i.naturalWidth;"
        "c.height=i.naturalHeight;var g=c.getContext('2d');g.drawImage(i,0,0);"
        "var d=g.getImageData(0,0,c.width,c.height).data,s=new Set();for(var k=0;k<d.length;k+=4)s.add(d[k]);"
        "return [c.width,c.height,s.size];")
    assert thumb[:2] == [16, 8] and thumb[2] > 2, thumb
