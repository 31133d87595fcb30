"""Where the shipped data live: the MOSES subset and the default model.

One place decides, in this order:

1. ``$MAM_DATA_DIR`` (a folder laid out like the repository's ``data/``), and for the model
   alone ``$MAM_DEFAULT_MODEL`` (a checkpoint file);
2. the repository's ``data/`` folder next to the package (a source checkout or an editable
   install);
3. the ``mam_data`` package that ``pip install .`` installs from that same folder.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["data_dir", "default_model_path"]

_REPO_DATA = Path(__file__).resolve().parent.parent / "data"


def data_dir() -> Path:
    """The folder holding ``moses_*.csv.gz`` and ``models/``."""
    env = os.environ.get("MAM_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if (_REPO_DATA / "models").is_dir():
        return _REPO_DATA
    try:
        installed = Path(str(resources.files("mam_data")))
    except ModuleNotFoundError:
        return _REPO_DATA  # neither: callers report the missing file by its path
    return installed


def default_model_path() -> Path:
    """The default molecule model: ``$MAM_DEFAULT_MODEL`` if set, else ``models/default.pt``
    of :func:`data_dir`."""
    env = os.environ.get("MAM_DEFAULT_MODEL")
    return Path(env).expanduser() if env else data_dir() / "models" / "default.pt"
