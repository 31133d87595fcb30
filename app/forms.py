"""Widget helpers shared by pages: each ``*_ui()`` draws its widgets and returns their values.

Keys come from :mod:`app.state`. Helpers that belong inside an ``st.form`` say so; the others
rerun the page when their value changes (the fragment check updates as the user types).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import streamlit as st

from app import state
from app.ui import fragment_from_editor, fragment_to_editor

__all__ = [
    "ORDER_LABELS",
    "SamplingSettings",
    "fragment_ui",
    "fragment_check_ui",
    "sampling_ui",
    "resolve_order",
]

#: Generation orders offered to the user, with what they mean.
ORDER_LABELS = {
    "auto": "best for this model",
    "random": "random",
    "confidence": "most certain position first",
    "l2r": "left to right",
    "r2l": "right to left",
    "custom": "typed positions first",
}

_ORDER_HELP = (
    "Any-order sampling fills the masked positions one by one. 'Most certain position first' "
    "picks, at every step, the masked position whose conditional distribution is most peaked. "
    "'Best for this model' is left to right for SMILES and fragment-block models (the syntax "
    "check then acts at every position) and random for SELFIES."
)


def _editor(value: str, key: str, height: int):
    """The molecule editor (Ketcher) showing ``value``; returns what it sent (``value`` until
    the user presses Apply), or ``None`` when the package is not installed.

    Ketcher reads its molecule only when it is mounted, so the widget key carries the value:
    new text mounts a fresh editor that draws it."""
    try:
        from streamlit_ketcher import st_ketcher
    except ImportError:
        return None
    return st_ketcher(value, height=height, key=f"{key}_{zlib.crc32(value.encode()):08x}")


def fragment_ui(
    key: str = state.DESIGN_FRAGMENT,
    editor_key: str = state.DESIGN_EDITOR,
    seen_key: str = state.DESIGN_EDITOR_SEEN,
    toggle_key: str = state.DESIGN_SHOW_EDITOR,
) -> str:
    """A fragment SMILES box and a molecule editor kept in step; returns the stripped text.

    The chemist types or pastes SMILES with attachment points (``[*]``, ``[1*]``...), or draws:
    in the editor an "any atom" (A) or an R-group label (R1, R2...) marks an attachment point.
    A structure sent with the editor's **Apply** button replaces the text; typed text is drawn
    in the editor. Outside a form (the fragment check follows every change).
    """
    box = st.container()
    show = st.toggle(
        "Draw in the molecule editor",
        value=True,
        key=toggle_key,
        help="Ketcher. Mark attachment points with 'Any atom' (A) or the R-group label "
        "tool (R1, R2…), then press Apply.",
    )
    if show:
        current = st.session_state.get(key) or ""
        drawn = _editor(fragment_to_editor(current), editor_key, height=500)
        if drawn is None:
            st.caption(
                "The molecule editor is not installed (`pip install streamlit-ketcher`); "
                "paste SMILES."
            )
        elif drawn != st.session_state.get(seen_key):
            st.session_state[seen_key] = drawn
            if drawn and drawn != fragment_to_editor(current):
                st.session_state[key] = fragment_from_editor(drawn)
    text = box.text_input(
        "Fragment (SMILES with attachment points, optional)",
        key=key,
        placeholder="e.g. [*]c1ccc(F)cc1 · [1*]c1ccc([2*])nc1 · [*]c1ccccc1.[*]N1CCOCC1 "
        "· empty = de novo",
        help="[*] or [1*], [2*]… mark where new atoms may grow. No attachment point: the molecule "
        "contains the fragment anywhere. Two dot-separated pieces: design a linker between them.",
    )
    return (text or "").strip()


def fragment_check_ui(model, fragment: str, start: int = 0) -> bool:
    """Say what a fragment asks this model for (task, attachment points, notices) or why it
    cannot be used; returns whether it can."""
    from mam_core.chem.fragments import FragmentError
    from mam_core.workflows.generate import plan_design

    if not fragment:
        st.caption("No fragment: de novo design (whole molecules from the model).")
        return True
    try:
        req = plan_design(model, 1, fragment, start)
    except (FragmentError, ValueError) as err:
        st.error(f"Cannot use this fragment: {err}")
        return False
    spec = req.spec
    n_att = spec.n_attachments
    points = f"{n_att} attachment point{'s' if n_att != 1 else ''}"
    st.markdown(f"Task: **{spec.task}** · {points} · every result contains `{spec.query_smiles}`")
    for notice in req.notices:
        st.warning(notice)
    return True


@dataclass
class SamplingSettings:
    order: str
    custom: str
    temperature: float
    top_p: float
    grammar: str = "full"


#: what each constraint mode does, in the words of the sampling form
CONSTRAINT_LABELS = {
    "full": "syntax and aromatic rings",
    "syntax": "syntax; redraw rings that fail",
    "off": "off (the model alone)",
}


def sampling_ui(prefix: str, D: int, defaults: dict | None = None) -> SamplingSettings:
    """Order, temperature and top-p (inside a form); ``prefix`` picks the page's state keys and
    ``defaults`` (``recommended_sampling``) the sliders' starting values."""
    defaults = defaults or {}
    c1, c2 = st.columns([1, 2])
    order = c1.selectbox(
        "Generation order",
        list(ORDER_LABELS),
        format_func=ORDER_LABELS.get,
        key=f"{prefix}_order",
        help=_ORDER_HELP,
    )
    custom = c2.text_input(
        "Typed positions (for 'typed positions first'; the rest follow left to right)",
        "",
        key=f"{prefix}_custom",
        placeholder=f"e.g. 20 21 22 0 1 (0 … {D - 1})",
    )
    c3, c4 = st.columns(2)
    temperature = c3.slider(
        "Temperature",
        0.1,
        2.0,
        min(max(round(defaults.get("temperature", 1.0), 1), 0.1), 2.0),
        0.1,
        key=f"{prefix}_temperature",
        help="Below 1 sharpens each conditional (safer, less diverse); above 1 flattens it.",
    )
    top_p = c4.slider(
        "Top-p",
        0.05,
        1.0,
        min(max(round(defaults.get("top_p", 1.0) * 20) / 20, 0.05), 1.0),
        0.05,
        key=f"{prefix}_top_p",
        help="Nucleus sampling: keep the most likely tokens covering this probability mass.",
    )
    modes = list(CONSTRAINT_LABELS)
    grammar = st.selectbox(
        "Syntax check",
        modes,
        index=modes.index(defaults.get("constraint", "full")),
        format_func=CONSTRAINT_LABELS.get,
        key=f"{prefix}_grammar",
        help="SMILES and fragment-block models: draw only tokens that keep the string a molecule "
        "(brackets, rings and fragment labels closed, valences respected). It acts where "
        "everything to the left is written, so fully with 'left to right'. 'Syntax; redraw "
        "rings that fail' lets the model write its aromatic rings unaided and draws a molecule "
        "again when RDKit cannot kekulise one: slower, and closer to what the model learned "
        "(docs/sampling). The default is the model's stored choice.",
    )
    return SamplingSettings(order, custom, float(temperature), float(top_p), str(grammar))


def resolve_order(settings: SamplingSettings, D: int):
    """The order to pass to sampling: a name, or the typed positions as a permutation.

    Raises:
        ValueError: typed positions that are not a valid order (the message says why).
    """
    from mam_core.core.orders import parse_order

    return parse_order(settings.custom, D) if settings.order == "custom" else settings.order
