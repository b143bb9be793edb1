"""Run the nbval suite under several numeric set-ups, one after the other (`make variants`).

    python tools/run_variants.py [--only NAME [--only NAME ...]] [notebooks ...]

Checked outputs must mean the same on every machine, so the suite must pass unchanged when the
float kernels change: the default; TensorFlow with oneDNN off (what CPUs without AVX-512 VNNI/BF16
or AMX get by default); one CPU core (other thread counts, other summation orders); and the JAX
backend (other kernels and other random initialisation). Each set-up's pass/fail and wall time are
printed at the end; the exit status is non-zero if any set-up failed. Not part of `make test`
(about four times its notebook pass).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBVAL = ["-m", "pytest", "-q", "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=300",
         "-p", "no:cacheprovider"]
#: name -> (environment changes, command prefix)
SETUPS = {
    "default": ({"KERAS_BACKEND": "tensorflow"}, []),
    "onednn-off": ({"KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "0"}, []),
    "one-core": ({"KERAS_BACKEND": "tensorflow"}, ["taskset", "-c", "0"]),
    "jax": ({"KERAS_BACKEND": "jax"}, []),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=list(SETUPS),
                        help="run only this set-up (repeatable); default: all four")
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(str(p.relative_to(ROOT))
                                         for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    args.only = args.only or list(SETUPS)
    if "one-core" in args.only and shutil.which("taskset") is None:
        print("taskset (util-linux) is needed for the one-core set-up", file=sys.stderr)
        return 2
    results = []
    for name in args.only:
        env_changes, prefix = SETUPS[name]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env_changes}
        print(f"== {name}: {' '.join(f'{k}={v}' for k, v in env_changes.items())} "
              f"{' '.join(prefix)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([*prefix, sys.executable, *NBVAL, *notebooks], cwd=ROOT, env=env)
        results.append((name, code, time.perf_counter() - start))
    print("\nset-up        result   wall time")
    for name, code, seconds in results:
        print(f"{name:12s}  {'passed' if code == 0 else 'FAILED':7s}  {seconds / 60:5.1f} min")
    return 1 if any(code for _, code, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
