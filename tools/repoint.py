"""Re-point the whole course at another repository (a fork), in one step.

    python tools/repoint.py https://github.com/OWNER/NAME [--branch BRANCH]

Rewrites ``vitlib/_meta.py`` (the one source of the address) and every file that spells the
address out: the Colab badges, set-up cells and links of the notebooks, the install lines in the
README and CONTRIBUTING, docstrings. GitHub, Colab and raw-file addresses all change, and with
``--branch`` the branch in them. Then ``make test`` checks that every badge, install line and link
agrees with ``vitlib/_meta.py`` (tests/test_colab.py). Only files tracked by git are touched.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
META = "vitlib/_meta.py"
_HOSTS = ("github.com/", "colab.research.google.com/github/", "raw.githubusercontent.com/")


def current(root: Path) -> tuple[str, str]:
    """(owner/name, branch) as ``vitlib/_meta.py`` in ``root`` says."""
    text = (root / META).read_text()
    repo = re.search(r'^REPOSITORY = "https://github\.com/([\w.-]+/[\w.-]+)"', text, re.M)
    branch = re.search(r'^BRANCH = "([^"]+)"', text, re.M)
    if not (repo and branch):
        raise SystemExit(f"{META}: cannot find REPOSITORY and BRANCH")
    return repo.group(1), branch.group(1)


def tracked_text_files(root: Path) -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True,
                           text=True).stdout.split("\0")
    files = []
    for name in filter(None, names):
        path = root / name
        if not path.is_file():
            continue
        try:
            path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary (checkpoints, images)
        files.append(path)
    return files


def repoint(root: Path, url: str, branch: str | None = None) -> list[Path]:
    """Replace the course's address (and branch) in every tracked text file. Returns the changed files."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", url)
    if not match:
        raise SystemExit(f"`url` must look like https://github.com/OWNER/NAME, got {url!r}")
    new = match.group(1)
    old, old_branch = current(root)
    branch = branch or old_branch
    pattern = re.compile("(" + "|".join(map(re.escape, _HOSTS)) + ")" + re.escape(old)
                         + r"(/(?:blob|tree)/" + re.escape(old_branch) + r"/|/" + re.escape(old_branch)
                         + r"/|\b)")

    def replace(m):
        tail = m.group(2).replace(old_branch, branch) if m.group(2) else ""
        return m.group(1) + new + tail

    changed = []
    for path in tracked_text_files(root):
        text = path.read_text(encoding="utf-8")
        out = pattern.sub(replace, text)
        if path == root / META:
            out = re.sub(r'^BRANCH = "[^"]+"', f'BRANCH = "{branch}"', out, flags=re.M)
        if out != text:
            path.write_text(out, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the new repository, https://github.com/OWNER/NAME")
    parser.add_argument("--branch", default=None, help="the branch the badges open (default: keep)")
    parser.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = Path(args.root)
    changed = repoint(root, args.url, args.branch)
    for path in changed:
        print(path.relative_to(root))
    print(f"{len(changed)} files now point at {args.url}; run `make test` to check.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
