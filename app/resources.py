"""Cached resources shared by pages (models, devices, the model list)."""

from __future__ import annotations

import streamlit as st
import torch

from app import state
from mam_core import resolve_device


def device_label() -> str:
    """Human-readable name of the device models run on (CUDA when present)."""
    dev = resolve_device("auto")
    if dev.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(dev)})"
    return f"CPU ({torch.get_num_threads()} threads)"


@st.cache_resource(show_spinner="Loading the model…")
def load_model(path: str | None = None):
    """The model at ``path`` (default: the shipped molecule model), loaded once per process.

    Pages must not modify it (it is shared between sessions)."""
    from mam_core import load
    from mam_core.paths import default_model_path

    model = load(path or default_model_path(), resolve_device("auto"))
    model.eval()
    return model


def warm_encoding_pool() -> None:
    """Start the encoding worker processes in the background unless they run already (one pool
    per server, remade if its workers die), so screening a pasted library uses both cores:
    1,000 molecules in 1.6 s instead of 2.1 s."""
    from mam_core.chem import encoding_pool

    encoding_pool.start_in_background()


def current_model_name() -> str:
    """The model the user picked in the sidebar (``"default"`` until they pick another)."""
    return st.session_state.get(state.MODEL_NAME) or "default"


def current_model():
    """The picked model, loaded once per process and shared; pages must not modify it."""
    from mam_core.workflows.model_store import model_path

    return load_model(str(model_path(current_model_name())))


def require_molecule_model():
    """The picked molecule model and its tokenizer.

    Stops the page with a message when no default model is installed, or when the picked
    model is not a molecule model (a lattice model has no molecule tokenizer)."""
    from mam_core.workflows.model_store import DEFAULT_NAME
    from mam_core.chem.molecules import tokenizer_of
    from mam_core.paths import default_model_path

    name = current_model_name()
    if name == DEFAULT_NAME and not default_model_path().is_file():
        st.warning("No default molecule model is installed yet (data/models/default.pt).")
        st.stop()
    model = current_model()
    tok = tokenizer_of(model)
    if tok is None:
        st.info(
            f"This page needs a molecule model. **{name}** is not one (D = {model.D}, K = "
            f"{model.K}, no molecule tokenizer: a lattice or token model). Pick a molecule model "
            "in the sidebar; lattice models belong on the Ising page."
        )
        st.stop()
    return model, tok


def _store_signature() -> tuple:
    """What the model list depends on: every checkpoint's path, size and modification time."""
    from mam_core.workflows.model_store import models_dir
    from mam_core.paths import default_model_path

    paths = [default_model_path()]
    folder = models_dir()
    if folder.is_dir():
        paths += sorted(folder.glob("*.pt"))
    sig = []
    for p in paths:
        try:
            s = p.stat()
        except OSError:
            continue
        sig.append((str(p), s.st_size, s.st_mtime_ns))
    return (str(folder), tuple(sig))


@st.cache_data(show_spinner="Reading the models…", max_entries=8)
def _model_infos(signature: tuple) -> list:
    from mam_core.workflows.model_store import list_models

    return list_models()


def model_infos() -> list:
    """:func:`mam_core.workflows.model_store.list_models`, re-read only when a checkpoint file
    changes
    (listing loads every checkpoint, which a rerun should not repeat)."""
    return _model_infos(_store_signature())
