"""Tests for mam_core.chem.moses and bench/make_moses_subset.py: the embedded subset, the wheel
reader (on a tiny fake wheel, and on the real one when it has been downloaded) and the clear
errors."""

from __future__ import annotations

import gzip
import importlib.util
import zipfile
from pathlib import Path

import pytest

import mam_core.chem.moses as moses_mod
from mam_core.chem.moses import (
    EMBEDDED_FILES,
    WHEEL_MEMBERS,
    data_dir,
    load_moses,
    read_wheel_split,
)
from mam_core.chem.tokenizers import is_valid_smiles

REAL_WHEEL = Path("/tmp/molsets/molsets-0.3.1-py3-none-any.whl")
ROOT = Path(__file__).resolve().parent.parent


def _fake_wheel(path: Path, splits: dict[str, list[str]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for split, smiles in splits.items():
            csv = "SMILES\n" + "".join(s + "\n" for s in smiles)
            zf.writestr(WHEEL_MEMBERS[split], gzip.compress(csv.encode(), mtime=0))
    return path


@pytest.fixture(scope="module")
def train() -> list[str]:
    return load_moses("train")


@pytest.fixture(scope="module")
def test_split() -> list[str]:
    return load_moses("test")


# ------------------------------------------------------------------------------ embedded subset
def test_embedded_counts_and_types(train, test_split):
    assert len(train) == 200_000 and len(test_split) == 10_000
    assert all(isinstance(s, str) and s for s in train[:1000])


def test_embedded_files_are_small():
    sizes = {f: (data_dir() / f).stat().st_size for f in EMBEDDED_FILES.values()}
    assert sum(sizes.values()) < 5_000_000, sizes
    assert (data_dir() / "README.md").is_file()


def test_embedded_smiles_are_valid(train, test_split):
    for s in train[:400] + test_split[:100]:
        assert is_valid_smiles(s), s


def test_embedded_unique_and_disjoint(train, test_split):
    assert len(set(train)) == len(train) and len(set(test_split)) == len(test_split)
    assert not set(train) & set(test_split)  # MOSES test is disjoint from train


def test_limit(train):
    assert load_moses("train", limit=5) == train[:5]
    assert load_moses("test", limit=0) == []
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="limit"):
            load_moses("train", limit=bad)


def test_bad_split_lists_valid_ones():
    with pytest.raises(ValueError, match="train, test, test_scaffolds"):
        load_moses("valid")


def test_scaffolds_need_the_wheel():
    with pytest.raises(ValueError, match="wheel"):
        load_moses("test_scaffolds")


def test_missing_embedded_file_is_clear(monkeypatch, tmp_path):
    monkeypatch.setattr(moses_mod, "data_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="make_moses_subset.py"):
        moses_mod.load_moses("train")


# ------------------------------------------------------------------------------ wheel reader
def test_fake_wheel_all_splits(tmp_path):
    wheel = _fake_wheel(
        tmp_path / "molsets.whl",
        {"train": ["CCO", "c1ccccc1"], "test": ["CCN"], "test_scaffolds": ["CC(=O)O", "CCC", "C"]},
    )
    assert load_moses("train", wheel=wheel) == ["CCO", "c1ccccc1"]
    assert load_moses("test", wheel=str(wheel)) == ["CCN"]
    assert load_moses("test_scaffolds", wheel=wheel, limit=2) == ["CC(=O)O", "CCC"]


def test_wheel_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="pip download --no-deps molsets"):
        load_moses("train", wheel=tmp_path / "nope.whl")
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a wheel"):
        read_wheel_split(junk, "train")
    partial = _fake_wheel(tmp_path / "partial.whl", {"train": ["CCO"]})
    with pytest.raises(ValueError, match="test_scaffolds.csv.gz"):
        load_moses("test_scaffolds", wheel=partial)


@pytest.mark.skipif(not REAL_WHEEL.is_file(), reason=f"molsets wheel not at {REAL_WHEEL}")
def test_real_wheel_counts(test_split):
    assert len(read_wheel_split(REAL_WHEEL, "test")) == 176_074
    scaffolds = load_moses("test_scaffolds", wheel=REAL_WHEEL)
    assert len(scaffolds) == 176_225 and is_valid_smiles(scaffolds[0])
    assert set(test_split) <= set(read_wheel_split(REAL_WHEEL, "test"))


# ------------------------------------------------------------------------------ subset script
def _load_script():
    spec = importlib.util.spec_from_file_location(
        "make_moses_subset", ROOT / "bench" / "make_moses_subset.py"
    )
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def test_subset_script_is_seeded_and_deterministic(tmp_path, capsys):
    script = _load_script()
    train = [f"C{'C' * i}O" for i in range(50)]
    wheel = _fake_wheel(tmp_path / "m.whl", {"train": train, "test": train[:20]})
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert (
            script.main(
                [
                    "--wheel",
                    str(wheel),
                    "--n-train",
                    "10",
                    "--n-test",
                    "5",
                    "--seed",
                    "3",
                    "--out-dir",
                    str(out),
                ]
            )
            == 0
        )
        outs.append(out)
    for f in EMBEDDED_FILES.values():
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes()  # byte-identical
    got = gzip.decompress((outs[0] / EMBEDDED_FILES["train"]).read_bytes()).decode().split()
    assert got[0] == "SMILES" and len(got) == 11 and set(got[1:]) <= set(train)
    assert "train: 10 of 50" in capsys.readouterr().out
    with pytest.raises(ValueError, match="only 50"):
        script.make_subset(train, 51, 0)


@pytest.mark.skipif(not REAL_WHEEL.is_file(), reason=f"molsets wheel not at {REAL_WHEEL}")
def test_embedded_subset_is_the_script_output(train, test_split):
    script = _load_script()
    assert script.make_subset(read_wheel_split(REAL_WHEEL, "train"), 200_000, 0) == train
    assert script.make_subset(read_wheel_split(REAL_WHEEL, "test"), 10_000, 0) == test_split
