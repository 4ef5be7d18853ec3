"""Driving the annotator page in headless Chromium (Debian's `chromium` + `chromium-driver`, selenium from PyPI):
what the browser tests and scripts/bench_label.py do with it, in scan pixels rather than screen points."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

from flask import Flask


def missing() -> str | None:
    """Why the page cannot be driven here (one line), or None when chromium, chromedriver and selenium are there."""
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        return "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (pip install selenium)"
    return None


class Served:
    """The app on a werkzeug server in a daemon thread, on a free port of 127.0.0.1."""

    def __init__(self, app: Flask) -> None:
        from baggan.label.app import serve

        self.server = serve(app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.thread.join(10)


class Page:
    """The annotator page in headless Chromium, with actions in scan pixels."""

    def __init__(self, url: str, width: int = 1400, height: int = 900) -> None:
        from selenium import webdriver

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--window-size={width},{height}", "--force-device-scale-factor=1"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(options=options,
                                       service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
        self.driver.get(url)
        self.until(lambda: self.js("return document.getElementById('view').dataset.ready === '1'"), 30)

    # Plumbing.

    def js(self, script: str, *args):
        """Run JavaScript in the page."""
        return self.driver.execute_script(script, *args)

    def until(self, condition, timeout: float = 60.0, poll: float = 0.05) -> float:
        """Wait until condition() is true; seconds waited. RuntimeError naming the page's status line on time-out."""
        t0 = time.perf_counter()
        while not condition():
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"timed out after {timeout} s; page status: {self.status()!r}")
            time.sleep(poll)
        return time.perf_counter() - t0

    def status(self) -> str:
        """The page's status line."""
        return self.js("return document.getElementById('status').textContent")

    def click(self, css: str) -> None:
        """Click the element of a CSS selector."""
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def keys(self, *keys: str, ctrl: bool = False) -> None:
        """Type keys into the canvas (its keyboard shortcuts), with Ctrl held if `ctrl`."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        self.js("document.getElementById('view').focus()")
        chain = ActionChains(self.driver)
        if ctrl:
            chain.key_down(Keys.CONTROL)
        for k in keys:
            chain.send_keys(k)
        if ctrl:
            chain.key_up(Keys.CONTROL)
        chain.perform()

    # Scan pixels.

    def offset(self, x: int, y: int) -> tuple[int, int]:
        """Offset from the canvas centre (selenium's origin) of the centre of scan pixel (x, y)."""
        v = self.js("const c = document.getElementById('view'), r = c.getBoundingClientRect();"
                    "return [baggan.view.scale, baggan.view.ox, baggan.view.oy, c.width / r.width, r.width, r.height]")
        scale, ox, oy, ratio, w, h = v
        return (round((ox + (x + 0.5) * scale) / ratio - w / 2), round((oy + (y + 0.5) * scale) / ratio - h / 2))

    def stroke(self, points: Sequence[tuple[int, int]]) -> None:
        """Press the left button on the first scan pixel, move through the others, release."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        canvas = self.driver.find_element(By.ID, "view")
        chain = ActionChains(self.driver, duration=20).move_to_element_with_offset(canvas, *self.offset(*points[0]))
        chain.click_and_hold()
        for p in points[1:]:
            chain.move_to_element_with_offset(canvas, *self.offset(*p))
        chain.release().perform()

    def pan(self, dx: int, dy: int) -> None:
        """Drag the view by (dx, dy) screen points with the space bar held."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        canvas = self.driver.find_element(By.ID, "view")
        self.js("document.getElementById('view').focus()")
        ActionChains(self.driver, duration=20).key_down(" ").move_to_element(canvas).click_and_hold() \
            .move_by_offset(dx, dy).release().key_up(" ").perform()

    def clicks(self, points: Sequence[tuple[int, int]]) -> None:
        """Click scan pixels one after the other."""
        for p in points:
            self.stroke([p])

    # The page's operations.

    def load_seed(self, seed: int, psi: float) -> str:
        """Load a seed's scan; its sample name."""
        for field, value in (("seed", seed), ("psi", psi)):
            self.js(f"document.getElementById('{field}').value = arguments[0]", value)
        self.click("#load")
        name = f"seed{seed:04d}_psi{psi:.2f}"
        self.until(lambda: self.js("return document.getElementById('view').dataset.sample") == name, 60)
        return name

    def save(self) -> None:
        """Ctrl+S, until the page says it saved."""
        self.js("document.getElementById('status').textContent = ''")
        self.keys("s", ctrl=True)
        self.until(lambda: self.status().startswith("saved"), 30)

    def fit(self, timeout: float = 300.0) -> float:
        """Click Fit; seconds from the click until every preview image is shown."""
        before = int(self.js("return baggan.fits"))
        self.click("#fit")
        t0 = time.perf_counter()
        self.until(lambda: self.js(
            "const b = document.getElementById('previews'), im = [...b.querySelectorAll('img')];"
            f"return b.dataset.fit === '{before + 1}' && im.length > 0 && im.every(i => i.complete && i.naturalWidth > 0)"),
            timeout, poll=0.02)
        return time.perf_counter() - t0

    def previews(self) -> int:
        """Preview images on the page."""
        return int(self.js("return document.querySelectorAll('#previews img').length"))

    def fix(self, k: int) -> str:
        """Click Fix on preview k; the sample name it loads (its mask: the prediction)."""
        self.click(f"#previews .preview:nth-child({k + 1}) button")
        self.until(lambda: self.status().startswith("mask from the segmenter's prediction"), 30)
        return self.js("return baggan.sample.name")

    def export(self, n: int, shard_size: int, timeout: float = 300.0) -> str:
        """Export n scans; the contact sheet's URL."""
        for field, value in (("export-n", n), ("export-shard", shard_size)):
            self.js(f"document.getElementById('{field}').value = arguments[0]", value)
        self.click("#export")
        self.until(lambda: self.js("return !!document.getElementById('contact-link')"), timeout)
        return self.js("return document.getElementById('contact-link').href")

    def screenshot(self, path: str | Path) -> Path:
        """A PNG of the page."""
        from baggan.io import write_bytes_atomic

        write_bytes_atomic(path, self.driver.get_screenshot_as_png())
        return Path(path)

    def close(self) -> None:
        """Quit the browser."""
        self.driver.quit()


def session_page(app: Flask) -> Iterator[Page]:
    """The app served and a page on it, closed (browser and server) when the generator is."""
    served = Served(app)
    try:
        page = Page(served.url)
        try:
            yield page
        finally:
            page.close()
    finally:
        served.close()
