"""Build the reveal.js decks and the static site of the notebooks, both working offline.

Usage (what `make slides` / `make html` run):

    python tools/build_site.py vendor                    # local copies of reveal.js, MathJax, ...
    python tools/build_site.py slides notebooks/*.ipynb  # build/slides/NN_name.slides.html
    python tools/build_site.py html notebooks/*.ipynb    # build/html/index.html + one page each

Layout of build/ (open it through any static web server, or copy the whole folder)::

    build/lib/      reveal.js, MathJax 2, require.js, jQuery (from the npm registry, once)
    build/slides/   one deck per notebook
    build/html/     index.html (the course map), one page per notebook, glossary.html

Nothing is loaded from the internet when a deck or a page is opened: nbconvert's CDN addresses
(reveal.js, require.js, jQuery, MathJax, Mermaid) are replaced by the local copies in build/lib,
and the Colab badge image by a local SVG. The copies are fetched with `npm pack` at the versions
nbconvert's templates were written for; a second run finds them in place and downloads nothing.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
LIB = BUILD / "lib"
TEMPLATES = Path(__file__).resolve().parent / "templates"

# name: (version, files kept from the npm package; a trailing "/" keeps a folder).
# reveal.js 4.0.2, require.js 2.1.10 and MathJax 2.7.7 are the versions nbconvert's templates
# load from their CDNs; jQuery 2.0.3 is not on npm, 2.2.4 is the closest 2.x release.
VENDOR = {
    "reveal.js": ("4.0.2", ["LICENSE", "dist/", "plugin/notes/"]),
    "requirejs": ("2.1.10", ["require.js", "LICENSE"]),
    "jquery": ("2.2.4", ["dist/jquery.min.js", "LICENSE.txt"]),
    # MathJax: only the TeX input and CommonHTML output with their fonts (about 4 of 60 MB).
    "mathjax": ("2.7.7", ["LICENSE", "MathJax.js", "config/TeX-AMS_CHTML-full.js",
                          "config/Safe.js",
                          "extensions/", "jax/input/TeX/", "jax/output/CommonHTML/",
                          "jax/element/", "fonts/HTML-CSS/TeX/woff/",
                          "fonts/HTML-CSS/TeX/otf/"]),
}

REVEAL_PREFIX = "../lib/reveal.js"
URLS = {  # HTMLExporter traits -> local copies (relative to build/slides or build/html)
    "require_js_url": "../lib/requirejs/require.js",
    "jquery_url": "../lib/jquery/dist/jquery.min.js",
    "mathjax_url": "../lib/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
}
FAVICON = '<link rel="icon" href="data:,">'
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img"
 aria-label="Open in Colab"><rect width="117" height="20" rx="3" fill="#555"/>
<rect x="20" width="97" height="20" rx="3" fill="#f9ab00"/><rect x="20" width="4" height="20"
 fill="#f9ab00"/><circle cx="10" cy="10" r="5" fill="none" stroke="#f9ab00" stroke-width="2.5"/>
<text x="68" y="14" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" fill="#fff"
 text-anchor="middle">Open in Colab</text></svg>
"""


# --- Local copies of the JavaScript libraries ------------------------------------------------

def _keep(member: str, keep: list[str]) -> bool:
    name = member.removeprefix("package/")
    return any(name == k or (k.endswith("/") and name.startswith(k)) for k in keep)


def vendor(lib: Path = LIB, npm: str = "npm") -> list[str]:
    """Put each library of VENDOR into ``lib/<name>`` unless that version is already there.

    Returns the names that were downloaded (empty on a second run).
    """
    fetched = []
    for name, (version, keep) in VENDOR.items():
        target = lib / name
        stamp = target / ".version"
        if stamp.is_file() and stamp.read_text().strip() == version:
            continue
        if shutil.which(npm) is None:
            raise SystemExit(f"`{npm}` is needed once to fetch {name}@{version} from the npm "
                             "registry (Debian: apt-get install npm).")
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([npm, "pack", f"{name}@{version}", "--silent"], cwd=tmp,
                                 check=True, capture_output=True, text=True).stdout
            tarball = Path(tmp) / out.strip().splitlines()[-1]
            if target.exists():
                shutil.rmtree(target)
            with tarfile.open(tarball) as tar:
                for member in tar.getmembers():
                    if member.isfile() and _keep(member.name, keep):
                        dest = target / member.name.removeprefix("package/")
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        dest.write_bytes(tar.extractfile(member).read())
        stamp.write_text(version + "\n")
        fetched.append(f"{name}@{version}")
    (lib / "colab-badge.svg").write_text(COLAB_BADGE_SVG)
    print("build/lib: " + (f"fetched {', '.join(fetched)}" if fetched else "up to date"))
    return fetched


# --- Links between the pages -----------------------------------------------------------------

def rewrite_links(page: str, *, glossary: str, index: str | None = None) -> str:
    """Point the course's own links at the built pages, and the badge image at the local copy."""
    page = page.replace(COLAB_BADGE_URL, "../lib/colab-badge.svg")
    if FAVICON not in page:  # else the browser asks the server for /favicon.ico
        page = page.replace("</head>", FAVICON + "\n</head>", 1)
    page = re.sub(r'href="(?:\.\./)?GLOSSARY\.md(#[^"]*)?"',
                  lambda m: f'href="{glossary}{m[1] or ""}"', page)
    # links to another notebook: 02_attention.ipynb (or notebooks/02_...) -> 02_attention.html
    page = re.sub(r'href="(?:\.\./notebooks/|notebooks/)?(\d\d_[\w-]+)\.ipynb(#[^"]*)?"',
                  lambda m: f'href="{m[1]}.html{m[2] or ""}"', page)
    if index:
        page = re.sub(r'href="(?:\.\./)?README\.md(#[^"]*)?"', f'href="{index}"', page)
    return page


def _markdown(text: str, html: bool = False) -> str:
    """Markdown to HTML; raw HTML only where asked (the glossary's own row anchors)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": html}).enable("table").render(text)


def _title(path: Path) -> str:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source.strip().splitlines()[0] if nb.cells else path.stem
    return first.lstrip("# ").strip()


SLIDE_STARTS = ("slide", "subslide")
MAX_SLIDE_CODE_LINES = 12  # longer code is hidden on slides (tag "slides-hide-input") or skipped
#: Lines for the checks, not the audience: nbval's markers and tests/test_notebooks.py's tolerances.
MARKER = re.compile(r"^[ \t]*# (?:NBVAL_\w+|tolerance:[ \t]*\S+)[ \t]*\n?", flags=re.M)


def slide_type(cell) -> str:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")


def speaker_notes_cell(notes: dict):
    """A reveal.js notes cell (``<aside class="notes">``, shown in the presenter view, key ``s``)
    from a slide's ``metadata.speaker_notes``: {"minutes": 1.5, "en": "...", "ja": "..."}."""
    import nbformat

    text = (f"**EN** (about {notes['minutes']:g} min)\n\n{notes['en'].strip()}\n\n"
            f"**JA**\n\n{notes['ja'].strip()}\n")
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["slideshow"] = {"slide_type": "notes"}
    return cell


def deck_notebook(path: Path):
    """The notebook as the deck shows it: speaker notes merged in as reveal.js notes, nbval
    markers removed from code, exercise solutions left out; the notebook file is not changed."""
    nb = _without_widget_state(path)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = MARKER.sub("", cell.source)
            if "# BEGIN SOLUTION" in cell.source:  # the solution stays out of the talk
                if slide_type(cell) in SLIDE_STARTS:
                    cell.metadata.setdefault("tags", []).append("slides-hide-input")
                    cell.outputs = []
                else:
                    cell.metadata.setdefault("slideshow", {})["slide_type"] = "skip"
        cells.append(cell)
        notes = cell.metadata.get("speaker_notes")
        if notes and slide_type(cell) in SLIDE_STARTS:
            cells.append(speaker_notes_cell(notes))
    nb.cells = cells
    return nb


def _without_widget_state(path: Path):
    """The notebook without its saved widget state: nbconvert would otherwise load the widget
    renderer from a CDN (unpkg.com). Widgets don't run in a static page anyway; the notebooks
    show a static figure beside every widget."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    return nb


# --- Slides ----------------------------------------------------------------------------------

def slides(paths: list[Path], out: Path = BUILD / "slides") -> list[Path]:
    """One reveal.js deck per notebook, ``out/NN_name.slides.html`` (see :func:`deck_notebook`)."""
    from nbconvert import SlidesExporter

    out.mkdir(parents=True, exist_ok=True)
    exporter = SlidesExporter(template_name="course_reveal",
                              extra_template_basedirs=[str(TEMPLATES)],
                              reveal_url_prefix=REVEAL_PREFIX, reveal_scroll=True, reveal_theme="white",
                              reveal_number="c/t", **URLS)
    # Long plotting code that would push its own figure off the slide: shown in the notebook,
    # left out of the deck (cells tagged "slides-hide-input"; the figure stays).
    exporter.register_preprocessor(_hide_input_preprocessor(), enabled=True)
    glossary_page(out.parent / "html")
    written = []
    for path in paths:
        body, _ = exporter.from_notebook_node(
            deck_notebook(path),
            resources={"metadata": {"name": path.stem, "path": str(path.parent)}})
        body = rewrite_links(body, glossary="../html/glossary.html")
        dest = out / f"{path.stem}.slides.html"
        dest.write_text(body, encoding="utf-8")
        written.append(dest)
        print(f"{dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
    return written


def _hide_input_preprocessor():
    from nbconvert.preprocessors import TagRemovePreprocessor

    return TagRemovePreprocessor(remove_input_tags={"slides-hide-input"}, enabled=True)


# --- The static site -------------------------------------------------------------------------

NAV_CSS = """<style>
.course-nav {display:flex; gap:1.5em; flex-wrap:wrap; padding:.6em 1em; margin-bottom:1em;
  border-bottom:1px solid #ddd; font-family:sans-serif; font-size:15px; background:#fafafa}
.course-nav a {text-decoration:none}
</style>"""


def _nav(prev: Path | None, nxt: Path | None, slides_link: str | None) -> str:
    parts = ['<a href="index.html">⌂ Course map</a>', '<a href="glossary.html">Glossary / 用語集</a>']
    if prev:
        parts.insert(0, f'<a href="{prev.stem}.html" rel="prev">← {html.escape(_title(prev))}</a>')
    if slides_link:
        parts.append(f'<a href="{slides_link}">Slides</a>')
    if nxt:
        parts.append(f'<a href="{nxt.stem}.html" rel="next">{html.escape(_title(nxt))} →</a>')
    return f'<nav class="course-nav">{" · ".join(parts)}</nav>'


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
{FAVICON}
<meta name="viewport" content="width=device-width, initial-scale=1">
{NAV_CSS}
<style>body {{font-family:sans-serif; max-width:60em; margin:0 auto; padding:0 1em 3em;
line-height:1.5}} table {{border-collapse:collapse}} td, th {{border:1px solid #ccc;
padding:.3em .6em; vertical-align:top}} th {{background:#f3f3f3}}</style>
</head><body>
{body}
</body></html>
"""


def course_map(readme: Path = ROOT / "README.md") -> str:
    """The README's "Course map" section (table and footnote), as markdown."""
    text = readme.read_text(encoding="utf-8")
    m = re.search(r"^## Course map\n(.*?)(?=^## )", text, flags=re.S | re.M)
    if not m:
        raise ValueError("README.md has no '## Course map' section")
    return m[1].strip()


def glossary_page(out: Path = BUILD / "html") -> Path:
    """GLOSSARY.md as ``out/glossary.html`` (the decks and the pages link to it)."""
    out.mkdir(parents=True, exist_ok=True)
    glossary = _markdown((ROOT / "GLOSSARY.md").read_text(encoding="utf-8"), html=True)
    glossary = re.sub(r'href="(?:\.\./)?notebooks/(\d\d_[\w-]+)\.ipynb"', r'href="\1.html"',
                      glossary)
    nav = '<nav class="course-nav"><a href="index.html">⌂ Course map</a></nav>'
    dest = out / "glossary.html"
    dest.write_text(_page("Glossary / 用語集", nav + glossary), encoding="utf-8")
    return dest


def html_site(paths: list[Path], out: Path = BUILD / "html") -> list[Path]:
    """A page per notebook (with prev / next / map / glossary links), an index and a glossary."""
    from nbconvert import HTMLExporter

    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab", **URLS)
    written = []
    slides_dir = BUILD / "slides"
    for i, path in enumerate(paths):
        body, _ = exporter.from_notebook_node(
            _without_widget_state(path),
            resources={"metadata": {"name": path.stem, "path": str(path.parent)}})
        body = rewrite_links(body, glossary="glossary.html", index="index.html")
        deck = slides_dir / f"{path.stem}.slides.html"
        nav = _nav(paths[i - 1] if i else None, paths[i + 1] if i + 1 < len(paths) else None,
                   f"../slides/{deck.name}" if deck.exists() else None)
        body, n = re.subn(r"(<body[^>]*>)", lambda m, nav=nav: m[1] + "\n" + nav, body, count=1)
        if not n:
            raise ValueError(f"{path}: no <body> in nbconvert's output")
        body = body.replace("</head>", NAV_CSS + "\n</head>", 1)
        body = body.replace("</body>", nav + "\n</body>", 1)
        dest = out / f"{path.stem}.html"
        dest.write_text(body, encoding="utf-8")
        written.append(dest)

    # The course map from the README, its links pointed at the pages.
    table = _markdown(course_map())
    table = re.sub(r'href="notebooks/(\d\d_[\w-]+)\.ipynb"', r'href="\1.html"', table)
    decks = "".join(f'<li><a href="../slides/{p.stem}.slides.html">{html.escape(_title(p))}</a></li>'
                    for p in paths if (slides_dir / f"{p.stem}.slides.html").exists())
    index = f"""<nav class="course-nav"><a href="glossary.html">Glossary / 用語集</a>
<a href="{paths[0].stem}.html">Start: {html.escape(_title(paths[0]))} →</a></nav>
<h1>Build a Vision Transformer, step by step (Keras 3)</h1>
<p>The executed notebooks of the course, for reading without Jupyter. To run them, open them in
JupyterLab (<code>make lab</code>) or in Colab (the badge at the top of each page).</p>
<h2>Course map</h2>
{table}
{f"<h2>Slides</h2><ul>{decks}</ul>" if decks else ""}
"""
    (out / "index.html").write_text(_page("ViT course: course map", index), encoding="utf-8")
    written += [out / "index.html", glossary_page(out)]
    print(f"build/html: {len(written)} pages (open build/html/index.html)")
    return written


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("vendor", "slides", "html"):
        print(__doc__)
        return 2
    paths = [Path(p).resolve() for p in argv[1:]]
    if argv[0] == "vendor":
        vendor()
    elif argv[0] == "slides":
        slides(paths)
    else:
        html_site(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
