"""The README's picture of the explorer: a run served, opened in headless chromium, an example picked,
a path to another decoded, and a screenshot saved.

    python benchmarks/serve_screenshot.py --out docs/serve-explorer.png [--run RUN]

Without --run the mlp recipe (2-D latent) is trained on digits for 20 epochs first.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/serve-explorer.png")
    parser.add_argument("--run")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    from browser import headless_chromium

    from vaekit.serve.server import ServerThread, torch_app

    run = args.run
    if run is None:
        import vaekit

        run = str(Path(tempfile.mkdtemp()) / "mlp")
        vaekit.train("digits", recipe="mlp", epochs=20, out=run, progress=False)
    with headless_chromium() as browser:
        with ServerThread(torch_app(run)) as url:
            browser.get(url + "/")
            wait = WebDriverWait(browser, 30)
            decodes = lambda: int(browser.find_element(By.ID, "decoded").get_attribute("data-decodes") or 0)  # noqa
            wait.until(lambda _: decodes() >= 1)
            first, second = browser.execute_script(  # two far-apart examples of different classes
                "const c = S.coords, l = S.map.labels; let best = [0, 1, -1];"
                "for (let i = 0; i < c.length; i += 7) for (let j = 0; j < c.length; j += 7) {"
                " const d = (c[i][0]-c[j][0])**2 + (c[i][1]-c[j][1])**2; if (l[i] !== l[j] && d > best[2]) best = [i, j, d]; }"
                "return [toPixel(c[best[0]]), toPixel(c[best[1]])];")
            plane = browser.find_element(By.ID, "plane")
            size = plane.size

            def at(point):
                return point[0] * size["width"] / 440 - size["width"] / 2, point[1] * size["height"] / 440 - size["height"] / 2
            ActionChains(browser).move_to_element_with_offset(plane, *at(first)).click().perform()
            ActionChains(browser).key_down(Keys.SHIFT).move_to_element_with_offset(plane, *at(second)).click() \
                .key_up(Keys.SHIFT).perform()
            wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#path canvas")) == 10)
            browser.set_window_size(1020, 800)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(args.out)
            print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
