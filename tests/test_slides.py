"""The decks (`make slides`) and the site (`make html`) render offline in a real browser.

Each deck and page is opened in headless Chromium from a local web server on 127.0.0.1, and the
test checks what a presenter or a reader would see: the deck's slide count (reveal.js' own
counter, against the notebook's slideshow metadata), equations typeset by the local MathJax, no
request outside the local server, no failed load, no script error, and a screenshot that is not
blank (kept in build/screenshots/ for a look). `make test` builds the decks and the site and
installs Chromium first (`make browser`); the test does not build anything itself.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import re
import threading
import time
from pathlib import Path

import pytest
from _tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SHOTS = BUILD / "screenshots"
pytestmark = pytest.mark.single_backend


headless = load_tool("headless")

# Ready when reveal.js has initialised (decks) and MathJax has emptied its queue (if loaded).
MATHJAX_DONE = """(() => {
  if (!document.querySelector('script[src*="MathJax.js"]')) return true;
  if (!window.MathJax || !MathJax.Hub) return false;
  if (window.__mathjax_done) return true;
  if (!window.__mathjax_queued) {
    window.__mathjax_queued = true;
    MathJax.Hub.Queue(() => { window.__mathjax_done = true; });
  }
  return false;
})()"""
REVEAL_READY = "document.querySelector('.reveal.ready') !== null"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    missing = [p for p in [BUILD / "lib" / "reveal.js" / "dist" / "reveal.js",
                           BUILD / "html" / "index.html",
                           *(BUILD / "slides" / f"{nb.stem}.slides.html" for nb in NOTEBOOKS)]
               if not p.is_file()]
    if missing:
        pytest.fail(f"not built: {missing[0].relative_to(ROOT)}; run `make slides html` first")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(BUILD)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if headless.find_chromium() is None:
        pytest.fail(headless.HOW_TO_GET)
    with headless.Chromium(timeout=45) as b:
        yield b


def _expected_slides(path: Path) -> int:
    """Slides in the deck = cells that start a slide or a sub-slide (reveal's flat count)."""
    cells = json.loads(path.read_text())["cells"]
    types = [c.get("metadata", {}).get("slideshow", {}).get("slide_type", "-") for c in cells]
    return sum(t in ("slide", "subslide") for t in types)


def _has_math(path: Path) -> bool:
    cells = json.loads(path.read_text())["cells"]
    return any(re.search(r"\$[^$\n]+\$", "".join(c["source"]))
               for c in cells if c["cell_type"] == "markdown")


def _check_visit(visit, base: str):
    assert visit.ready, f"{visit.url} did not finish loading"
    outside = [u for u in visit.requests if not u.startswith(base) and not u.startswith("data:")]
    assert not outside, f"requests outside the local server (would fail offline): {outside}"
    assert not visit.failed_loads, f"failed loads: {visit.failed_loads}"
    assert not visit.errors, f"script errors: {visit.errors}"


def _not_blank(png: bytes, name: str) -> None:
    from PIL import Image, ImageStat

    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / name).write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("L")
    stat = ImageStat.Stat(image)
    dark = sum(image.histogram()[:128]) / (image.width * image.height)
    assert stat.stddev[0] > 10 and dark > 0.003, f"{name}: the screenshot looks blank"


def _math_ok(browser, page: str):
    rendered = browser.evaluate("document.querySelectorAll('.MathJax_CHTML').length")
    errors = browser.evaluate("document.querySelectorAll('.MathJax_Error, merror').length")
    assert rendered > 0 and errors == 0, f"{page}: {rendered} equations typeset, {errors} errors"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_renders_offline(notebook, server, browser):
    page = f"slides/{notebook.stem}.slides.html"
    visit = browser.visit(f"{server}/{page}", ready=f"{REVEAL_READY} && {MATHJAX_DONE}")
    _check_visit(visit, server)
    counter = browser.evaluate("document.querySelector('.reveal .slide-number').innerText")
    current, total = (int(n) for n in re.findall(r"\d+", counter))
    assert (current, total) == (1, _expected_slides(notebook)), f"reveal.js counter: {counter!r}"
    if _has_math(notebook):
        _math_ok(browser, page)
    _not_blank(browser.screenshot(), f"{notebook.stem}.slides.png")
    # The first slide with a figure, screenshotted for a look at how it reads when projected,
    # with its speaker notes (what reveal.js' presenter view shows, key `s`).
    where = browser.evaluate(FIRST_FIGURE)
    assert where, f"{page}: no slide with a figure"
    browser.evaluate(f"location.hash = '#/{where[0]}/{where[1]}'")
    time.sleep(1.0)  # reveal.js' transition to the slide
    notes = browser.evaluate("(document.querySelector('.reveal section.present:not(.stack) "
                             "aside.notes') || {innerText: ''}).innerText")
    assert "EN" in notes and "JA" in notes, f"{page}#/{where}: no speaker notes on the slide"
    _not_blank(browser.screenshot(), f"{notebook.stem}.figure.png")


FIRST_FIGURE = """(() => {
  const tops = [...document.querySelectorAll('.reveal .slides > section')];
  for (let h = 0; h < tops.length; h++) {
    const subs = tops[h].querySelectorAll(':scope > section');
    const list = subs.length ? [...subs] : [tops[h]];
    for (let v = 0; v < list.length; v++) if (list[v].querySelector('.jp-OutputArea-output img')) return [h, v];
  }
  return null;
})()"""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_has_notes_on_every_slide_and_no_markers_or_solutions(notebook):
    """The deck build merged the speaker notes and left out what is not for the talk."""
    deck = BUILD / "slides" / f"{notebook.stem}.slides.html"
    if not deck.is_file():
        pytest.fail(f"not built: {deck.relative_to(ROOT)}; run `make slides` first")
    text = deck.read_text(encoding="utf-8")
    assert text.count('<aside class="notes">') == _expected_slides(notebook)
    for leftover in ("NBVAL_", "# tolerance:", "BEGIN SOLUTION", "END SOLUTION"):
        assert leftover not in text, f"{deck.name}: {leftover!r} is on a slide"


@pytest.mark.parametrize("page", ["index.html", "glossary.html",
                                  *(f"{nb.stem}.html" for nb in NOTEBOOKS)])
def test_site_page_renders_offline_and_links_resolve(page, server, browser):
    visit = browser.visit(f"{server}/html/{page}", ready=MATHJAX_DONE)
    _check_visit(visit, server)
    notebook = ROOT / "notebooks" / page.replace(".html", ".ipynb")
    if notebook.is_file() and _has_math(notebook):
        _math_ok(browser, page)
    hrefs = browser.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))")
    local = {h.split("#")[0] for h in hrefs
             if h and not re.match(r"^(https?:|mailto:|#|data:)", h)} - {""}
    broken = sorted(h for h in local if not (BUILD / "html" / h).resolve().is_file())
    assert not broken, f"{page}: links to missing files {broken}"
    if page == "index.html":  # the course map links every notebook's page
        assert {f"{nb.stem}.html" for nb in NOTEBOOKS} <= local
    elif notebook.is_file():  # every page leads back to the map and to the glossary
        assert {"index.html", "glossary.html"} <= local
    _not_blank(browser.screenshot(), f"html-{page.replace('.html', '')}.png")
