"""The report in a real browser (Debian's chromium and chromium-driver, driven by selenium): hovering a
point of the latent map shows its thumbnail, and the page's screenshot is not blank. Skips, saying why,
where the browser or selenium is missing."""
import io
import shutil

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")

from browser import headless_chromium, missing  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    why = missing()
    if why:
        pytest.skip(why)
    with headless_chromium("1200,900") as driver:
        yield driver


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
