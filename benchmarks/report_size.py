"""The size of ``vaekit report`` for a 10,000-point latent map: the mlp recipe trained for one epoch on
Fashion-MNIST (its 10,000-example test split), evaluated, then reported; prints the file's size and the
report's time, and with --screenshot saves a screenshot of the map with a hovered point (headless chromium).

    python benchmarks/report_size.py --out /tmp/report-bench [--screenshot docs/report.png]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def vaekit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vaekit", *args], check=True, capture_output=True, text=True)


def screenshot(page: Path, png: Path) -> None:
    """The latent map with one thumbnailed point hovered, as the README shows it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser import headless_chromium
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with headless_chromium() as driver:
        driver.get(page.resolve().as_uri())
        svg = driver.find_element(By.CSS_SELECTOR, "svg.map")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -110);", svg)
        dots = driver.find_elements(By.CSS_SELECTOR, "svg.map circle[data-t]")
        ActionChains(driver).move_to_element(dots[len(dots) // 3]).perform()
        time.sleep(0.3)
        png.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(png))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/report-bench"))
    parser.add_argument("--epochs", default="1")
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    run, page = args.out / "fmnist", args.out / "fmnist.html"
    if not (run / "model.safetensors").is_file():
        vaekit("train", "--recipe", "mlp", "--data", "fashion-mnist", "--epochs", args.epochs, "--out", str(run),
               "--overwrite", "--no-progress", "--no-plots")
        vaekit("evaluate", str(run))
    start = time.perf_counter()
    vaekit("report", str(run), "--out", str(page))
    seconds = time.perf_counter() - start
    html = page.read_text(encoding="utf-8")
    print(json.dumps({"points": html.count("<circle cx="), "thumbnails": html.count(" data-t="),
                      "bytes": page.stat().st_size, "MB": round(page.stat().st_size / 1e6, 2),
                      "report_seconds": round(seconds, 1)}))
    if args.screenshot:
        screenshot(page, args.screenshot)


if __name__ == "__main__":
    main()
