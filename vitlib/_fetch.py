"""The one downloader of vitlib (Fashion-MNIST, the course's files, Google's checkpoints).

Written on ``urllib`` rather than ``keras.utils.get_file``, which has no time-out: on a classroom
network that drops packets it can wait for ever, where this gives up after ``timeout`` seconds
with an error that says what to do offline.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path


def fetch_url(url: str, dest, timeout: float, check=None) -> Path:
    """Download ``url`` to ``dest``, all or nothing; returns ``dest``.

    The bytes go to a temporary file beside ``dest``; ``check(temporary_path)``, if given, may
    raise to reject them (a wrong checksum); only then is the file moved into place. On any error
    (OSError, including urllib's URLError and time-outs, or ``check``'s) the temporary file is
    deleted and the error re-raised, so an interrupted download never leaves a partial file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, \
                tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.",
                                            suffix=".part", delete=False) as out:
            tmp = Path(out.name)
            shutil.copyfileobj(response, out)
        if check is not None:
            check(tmp)
        os.replace(tmp, dest)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return dest
