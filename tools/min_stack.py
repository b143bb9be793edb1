"""Print the oldest stack vitlib supports, as pip requirements (what `make compat` installs).

Usage: python tools/min_stack.py [--extras tensorflow,photos,plots]

The minimum versions are declared in ONE place, pyproject.toml: each lower bound ``name>=X.Y``
of ``[project] dependencies`` and of the chosen optional extras becomes ``name==X.Y.*`` (the
oldest release line claimed to work). On Linux x86-64 TensorFlow is replaced by its CPU-only
build, as in requirements.txt. Needs Python 3.11+ (tomllib).
"""

from __future__ import annotations

import platform
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
LOWER = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.-]+)\s*>=\s*(?P<version>[0-9][0-9.]*)\s*$")


def minimum_requirements(pyproject: Path = ROOT / "pyproject.toml",
                         extras: tuple[str, ...] = ("tensorflow", "photos", "plots"),
                         linux_x86_64: bool | None = None) -> list[str]:
    """Return ``["keras==3.10.*", ...]`` from the lower bounds declared in ``pyproject``."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    if linux_x86_64 is None:
        linux_x86_64 = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")
    out = []
    for spec in specs:
        m = LOWER.match(spec)
        if not m:
            raise ValueError(f"pyproject.toml: {spec!r} is not a plain lower bound 'name>=X.Y'")
        name = m["name"]
        if name == "tensorflow" and linux_x86_64:
            name = "tensorflow-cpu"
        out.append(f"{name}=={m['version']}.*")
    return out


if __name__ == "__main__":
    extras = ("tensorflow", "photos", "plots")
    if len(sys.argv) == 3 and sys.argv[1] == "--extras":
        extras = tuple(e for e in sys.argv[2].split(",") if e)
    print("\n".join(minimum_requirements(extras=extras)))
