"""A non-editable install has the default model and the MOSES subset: build the wheel, unpack it
somewhere else, and run `mam sample` and the MOSES loader from a third folder."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None,
                    reason="needs setuptools to build the wheel")
def test_wheel_ships_the_data_and_works_from_another_folder(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    str(ROOT),
                    "-w", str(wheels)], check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = wheels.glob("mam_studio-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"mam_data/models/default.pt", "mam_data/moses_train.csv.gz",
            "mam_data/moses_test.csv.gz"} <= set(names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAM_")}
    env["PYTHONPATH"] = str(site)
    code = ("import mam_core, mam_core.paths as p; from mam_core.chem.moses import load_moses; "
            "print(mam_core.__file__); print(p.data_dir()); print(len(load_moses('test', "
            "limit=5)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=elsewhere, env=env,
                         capture_output=True, text=True)
    pkg, data, n = out.stdout.split()
    assert Path(pkg).is_relative_to(site) and Path(data) == site / "mam_data" and n == "5"
    sample = subprocess.run([sys.executable, "-m", "mam_core.cli", "sample", "-n", "4", "--seed",
                             "0"],
                            cwd=elsewhere, env=env, capture_output=True, text=True)
    assert sample.returncode == 0, sample.stderr
    assert len(sample.stdout.strip().splitlines()) == 4
