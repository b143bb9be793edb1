"""Load a script from tools/ as a module (tools/ is not a package), for the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def load_tool(name: str):
    """Import ``tools/<name>.py`` and return the module."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class LocalServer:
    """A static HTTP server on 127.0.0.1 over ``folder`` (a stand-in for GitHub's raw files),
    recording the paths it was asked for. Use as a context manager or call ``close()``."""

    def __init__(self, folder):
        import functools
        import http.server
        import threading

        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                outer.requests.append(self.path)

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def copy_tree_as_repository(root, dest, skip=()) -> None:
    """The files git tracks in ``root`` (as they are now, minus paths starting with ``skip``) in a
    new one-commit git repository at ``dest``."""
    import shutil
    import subprocess
    from pathlib import Path

    root, dest = Path(root), Path(dest)
    names = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for name in filter(None, names):
        if (root / name).is_file() and not name.startswith(tuple(skip)):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, dest / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], cwd=dest, check=True)
