"""vitlib.records: what every command stores beside its results."""

from __future__ import annotations

import json
import os
import platform

import keras
import pytest

from vitlib import records

pytestmark = pytest.mark.single_backend  # no tensor code


def test_results_are_never_replaced_without_overwrite(tmp_path):
    out = tmp_path / "sub" / "r.json"
    records.write_results({"a": 1}, out)
    with pytest.raises(FileExistsError, match="`out`.*--overwrite"):
        records.write_results({"a": 2}, out)
    assert json.loads(out.read_text()) == {"a": 1}
    records.write_results({"a": 3}, out, overwrite=True)
    assert json.loads(out.read_text()) == {"a": 3}


def test_machine_and_versions_name_this_machine():
    m, v = records.machine(), records.versions()
    assert m["cpu_count"] == os.cpu_count() and m["machine"] == platform.machine()
    assert v["keras"] == keras.__version__ and v["python"] == platform.python_version()
    line = records.machine_summary()
    assert f"{os.cpu_count()} CPU cores" in line and f"keras {keras.__version__}" in line
    load = records.load_average()
    assert load is None or (len(load) == 3 and all(x >= 0 for x in load))
