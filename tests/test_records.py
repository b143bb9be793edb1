"""vitlib.records: where a measurement was made (machine, versions, load average)."""

from __future__ import annotations

import os
import platform

import keras
import pytest

from vitlib import records

pytestmark = pytest.mark.single_backend  # no tensor code


def test_machine_and_versions_name_this_machine():
    m, v = records.machine(), records.versions()
    assert m["cpu_count"] == os.cpu_count() and m["machine"] == platform.machine()
    assert v["keras"] == keras.__version__ and v["python"] == platform.python_version()
    line = records.machine_summary()
    assert f"{os.cpu_count()} CPU cores" in line and f"keras {keras.__version__}" in line
    load = records.load_average()
    assert load is None or (len(load) == 3 and all(x >= 0 for x in load))
