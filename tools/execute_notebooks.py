"""Execute notebooks in place, from a clean kernel, top to bottom (what `make notebooks` runs).

Usage: python tools/execute_notebooks.py notebooks/01_*.ipynb ...

Each notebook runs in a fresh kernel with its own folder as the working directory, exactly as a
learner's JupyterLab would run it. The stored outputs are then checked for local paths (home,
temporary or checkout folders), which must never be committed. Prints each run time.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

LOCAL = [str(Path.cwd()), os.path.expanduser("~"), tempfile.gettempdir()]
LEAK = re.compile("|".join(re.escape(p.rstrip("/") + "/") for p in LOCAL if len(p) > 1))


def leaks(nb) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            m = LEAK.search(text)
            if m:
                found.append(f"cell {i}: {text[max(0, m.start() - 20): m.end() + 40]!r}")
    return found


#: TensorFlow's C++ log lines on stderr (start-up notices written before logging is set up, so
#: TF_CPP_MIN_LOG_LEVEL does not hide them, and oneDNN notices that appear only on some CPUs: it is
#: on by default where the CPU has AVX-512 VNNI/BF16 or AMX): machine noise, not course output.
STARTUP_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
                           r"[IWE]0000 00:00:\S+ +\d+ \w+\.cc:\d+\]|"
                           r"To enable the following instructions:).*\n?", re.M)


def tidy(nb) -> None:
    """Drop TensorFlow's start-up noise from stderr and merge consecutive stream outputs of the
    same name (a print can arrive in two pieces), so the stored run reads as the learner's would."""
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                if out["name"] == "stderr":
                    out["text"] = STARTUP_NOISE.sub("", out["text"])
                    if not out["text"]:
                        continue
                if merged and merged[-1].get("output_type") == "stream" and \
                        merged[-1]["name"] == out["name"]:
                    merged[-1]["text"] += out["text"]
                    continue
            merged.append(out)
        if "outputs" in cell:
            cell["outputs"] = merged


def main(paths: list[str]) -> int:
    failed = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        client = NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(Path(path).parent)}})
        client.execute()
        seconds = time.perf_counter() - start
        tidy(nb)
        nbformat.write(nb, path)
        bad = leaks(nb)
        print(f"{path}: {seconds:.1f} s" + (f"  LOCAL PATHS: {bad}" if bad else ""))
        failed += bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
