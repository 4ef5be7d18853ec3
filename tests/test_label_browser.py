"""`baggan label` in headless Chromium: a stroke painted with mouse events (plus polygon, fill, eraser, undo/redo, zoom,
pan and the keyboard shortcuts) is saved pixel for pixel; Fit shows the previews; Fix and refit adds a shot; Export links
its contact sheet. Skipped, with the reason, where Debian's chromium / chromium-driver or selenium are missing."""

import urllib.request

import numpy as np
import pytest
from label_fixtures import make_app, pieces  # noqa: F401 - fixture
from scipy import ndimage
from toygen import single_thread  # noqa: F401 - tiny tensors: one thread is faster on a busy CPU

from baggan.io import read_json, read_label_png
from baggan.label.browser import missing, session_page

REASON = missing()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")
HAMMER, KNIFE, IGNORE = 3, 11, 255


@pytest.fixture(scope="module")
def page(pieces, tmp_path_factory):  # noqa: F811 - pytest fixture
    workdir = tmp_path_factory.mktemp("label-browser") / "work"
    app, _ = make_app(pieces, workdir)
    pages = session_page(app)
    p = next(pages)
    p.workdir = workdir
    yield p
    pages.close()


def test_painting_is_saved_pixel_for_pixel(page, tmp_path):
    name = page.load_seed(3, 0.7)
    expected = np.zeros((16, 16), np.uint8)

    page.keys("[", "[")  # brush (default), Hammer (default), size 3 → 1
    page.stroke([(2, 5), (12, 5), (12, 10)])
    expected[5, 2:13] = HAMMER
    expected[5:11, 12] = HAMMER

    page.keys("-", "]", "]")  # Knife, size 3: a 3x3 stamp
    page.clicks([(5, 12)])
    expected[11:14, 4:7] = KNIFE
    page.keys("z", ctrl=True)
    assert page.js("return baggan.ids[12 * 16 + 5]") == 0  # undone
    page.keys("y", ctrl=True)  # redone

    page.keys("p", "3")  # polygon, Hammer: four corners, Enter closes it
    page.clicks([(8, 0), (14, 0), (14, 2), (8, 2)])
    page.keys("\ue007")  # Enter
    expected[0:3, 8:15] = HAMMER

    page.keys("f", "n")  # fill the background region around (0, 15) with "not annotated"
    page.clicks([(0, 15)])
    regions, _ = ndimage.label(expected == 0)
    expected[regions == regions[15, 0]] = IGNORE

    page.keys("e", "[", "[")  # eraser, size 1
    page.clicks([(12, 8)])
    expected[8, 12] = 0

    before = page.js("return [baggan.view.scale, baggan.view.ox, baggan.view.oy]")
    page.keys("z", "z")  # zoom in twice, then pan: painting still lands on the pixel under the pointer
    page.pan(-37, 23)
    after = page.js("return [baggan.view.scale, baggan.view.ox, baggan.view.oy]")
    assert after[0] == pytest.approx(before[0] * 1.25**2) and after[1:] != before[1:]
    page.keys("b", "-")
    page.clicks([(6, 7), (7, 7)])
    expected[7, 6:8] = KNIFE

    page.save()
    np.testing.assert_array_equal(read_label_png(page.workdir / "masks" / f"{name}.png"), expected)
    sidecar = read_json(page.workdir / "masks" / f"{name}.json")
    assert (sidecar["seed"], sidecar["psi"], sidecar["categories"]) == (3, 0.7, ["Hammer", "Knife"])
    shot = page.screenshot(tmp_path / "painting.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_shows_previews_then_fix_and_refit(page):
    assert page.fit() > 0 and page.previews() == 16
    fixed = page.fix(0)
    assert fixed == "seed0100_psi0.70"
    page.keys("b", "3")
    page.stroke([(1, 1), (6, 1)])
    page.save()
    assert page.js("return document.getElementById('fit').textContent") == "Refit (2 shots)"
    page.fit()
    assert page.previews() == 16 and "2 shot(s)" in page.js("return document.getElementById('fit-info').textContent")
    assert read_json(page.workdir / "masks" / f"{fixed}.json")["seed"] == 100


def test_export_links_the_contact_sheet(page):
    url = page.export(5, 3)
    with urllib.request.urlopen(url) as r:
        assert r.status == 200 and r.read()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_uploaded_scan_is_projected_with_progress(page, tmp_path):
    from selenium.webdriver.common.by import By

    from baggan.io import write_image_atomic

    write_image_atomic(tmp_path / "bag.png", np.random.default_rng(1).integers(0, 255, (16, 16, 3), np.uint8))
    page.driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "bag.png"))
    page.until(lambda: page.js("return document.getElementById('view').dataset.sample") == "upload-bag", 120)
    assert page.js("return document.getElementById('upload-bar').lastElementChild.textContent") == \
        "projecting: step 5/5"
    assert "projected bag.png (PSNR" in page.js("return document.getElementById('sample-name').textContent")
