"""Imports go one way: core ← training ← chem ← energies ← workflows ← cli / app / pages.

The engine (``mam_core.core``) and training (``mam_core.training``) must import with chemistry,
energies and RDKit unavailable; each check runs in a fresh interpreter so nothing imported by
other tests can hide a violation.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What the engine and training must not need. ``None`` in sys.modules makes any import of the
#: name (or of anything under it) raise ImportError.
BLOCKED = ("rdkit", "selfies", "energies", "mam_core.chem", "mam_core.workflows", "mam_core.cli")



def _run(code: str, blocked: tuple[str, ...] = BLOCKED) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where every name in ``blocked`` cannot be imported."""
    prelude = (
        "import importlib, pkgutil, sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )


def test_core_and_training_import_without_chemistry_or_energies():
    res = _run("""
        import mam_core, mam_core.core, mam_core.training
        seen = []
        for pkg in (mam_core.core, mam_core.training):
            for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(info.name)
                seen.append(info.name)
        outside = ("rdkit", "selfies", "energies")
        leaked = sorted(m for m, mod in sys.modules.items()
                        if mod is not None and m.split(".")[0] in outside)
        assert not leaked, leaked
        print(len(seen), " ".join(seen))
    """)
    assert res.returncode == 0, res.stderr
    count, *names = res.stdout.split()
    assert int(count) >= 15  # every engine and training module was imported
    for name in ("mam_core.core.model", "mam_core.core.sampling", "mam_core.training.loop",
                 "mam_core.training.state", "mam_core.training.trainers"):
        assert name in names


def test_the_block_catches_an_engine_module_that_imports_rdkit(tmp_path):
    # the blocker itself: importing a blocked name raises ImportError (ModuleNotFoundError) ...
    res = _run("import rdkit")
    assert res.returncode != 0 and "import of rdkit halted" in res.stderr
    res = _run("from mam_core.chem import rdkit_utils")
    assert res.returncode != 0 and "import of mam_core.chem halted" in res.stderr
    # ... and so does a module of the engine's kind that reaches for chemistry
    (tmp_path / "bad_engine_module.py").write_text("import torch\nfrom rdkit import Chem\n")
    res = _run(f"sys.path.insert(0, {str(tmp_path)!r})\nimport bad_engine_module")
    assert res.returncode != 0 and "import of rdkit halted" in res.stderr


def test_chemistry_and_energies_do_not_import_use_cases():
    res = _run("""
        import mam_core.chem
        for info in pkgutil.walk_packages(mam_core.chem.__path__, "mam_core.chem."):
            importlib.import_module(info.name)
        assert "energies" not in sys.modules  # chemistry sits below the energies
        import energies
        for info in pkgutil.walk_packages(energies.__path__, "energies."):
            importlib.import_module(info.name)
    """, blocked=("mam_core.workflows", "mam_core.cli", "app", "pages"))
    assert res.returncode == 0, res.stderr
