"""Design page: draw or paste a fragment with attachment points, generate molecules that
contain it, and look at them: the matched atoms highlighted, failures kept apart with their
reason, a filterable table, CSV/SDF, and one generation replayed position by position."""

import streamlit as st

from app import state
from app.forms import fragment_check_ui, fragment_ui, resolve_order, sampling_ui
from app.resources import require_molecule_model
from app.ui import (
    molecule_grid,
    replay_frame,
    replay_generation,
    split_design_table,
    summary_line,
    to_sdf,
)
from mam_core.workflows.generate import (
    generate_molecules,
    recommended_constraint,
    recommended_sampling,
)

st.title("Design molecules")
model, tok = require_molecule_model()
uses_start = tok.kind != "safe"  # fragment-block models place the fragment themselves

fragment = fragment_ui()
start = 0
if uses_start:
    start = int(
        st.number_input(
            f"Fragment start position ({tok.kind.upper()} model)",
            0,
            model.D - 1,
            0,
            key=state.DESIGN_START,
            help="Where the fragment's tokens are placed; the model fills the positions around "
            "them.",
        )
    )
usable = fragment_check_ui(model, fragment, start)

with st.form("design"):
    sampling = sampling_ui("design", model.D, {**recommended_sampling(model),
                                               "constraint": recommended_constraint(model)})
    c1, c2 = st.columns(2)
    n = c1.number_input("Molecules", 1, 256, 16, key=state.DESIGN_N)
    seed = c2.number_input("Seed", 0, 1_000_000, 0, key=state.DESIGN_SEED)
    submitted = st.form_submit_button("Generate", type="primary")

if submitted and usable:
    try:
        order = resolve_order(sampling, model.D)
        with st.spinner("Sampling…"):
            table = generate_molecules(
                model,
                int(n),
                fragment=fragment or None,
                start=start,
                order=order,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                seed=int(seed),
                grammar=sampling.grammar,
                typicality=True,
            )
    except ValueError as err:  # FragmentError included
        st.error(f"Cannot generate: {err}")
    else:
        st.session_state[state.DESIGN_TABLE] = table
        st.session_state[state.DESIGN_LAST] = {
            "fragment": fragment or None,
            "start": start,
            "order": order,
            "seed": int(seed),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "grammar": sampling.grammar,
        }

table = st.session_state[state.DESIGN_TABLE]
if table is None:
    st.stop()

summary = table.attrs.get("summary", {})
st.subheader("Results")
st.markdown(f"**{summary_line(summary)}** · task: {table.attrs.get('task', 'de novo')}")
last = st.session_state.get(state.DESIGN_LAST) or {}
if (last.get("fragment") or "") != (fragment or ""):  # else the check above shows them already
    for notice in table.attrs.get("notices", []):
        st.caption(f"ℹ️ {notice}")
ok, failed = split_design_table(table)

with st.expander("Filter", expanded=False):
    f1, f2 = st.columns(2)
    lo, hi = f1.slider("logP range", -10.0, 15.0, (-10.0, 15.0), 0.5, key=state.DESIGN_LOGP)
    qmin = f2.slider("Minimum QED", 0.0, 1.0, 0.0, 0.05, key=state.DESIGN_QED)
shown = ok[ok["logP"].between(lo, hi) & (ok["QED"] >= qmin)]
if len(ok) == 0:
    st.warning("No molecule satisfied the design; the failed rows below say why.")
else:
    fixed = summary.get("matched") is not None
    st.caption(
        f"{len(shown)} of {len(ok)} molecules"
        + (", fragment atoms highlighted" if fixed else "")
        + "; the first 32 are drawn. Click a column header to sort."
        + (" `percentile`: how atypical a molecule is next to the model's training molecules "
           "(the share of them scoring at or below it, as on the Likelihood page; 90 = more "
           "atypical than 90 %)." if "percentile" in ok else "")
    )
    top = shown.head(32)
    molecule_grid(
        top["SMILES"].tolist(),
        [f"logP {v:.2f} · QED {q:.2f}" for v, q in zip(top["logP"], top["QED"])],
        highlight_atoms=top["matched_atoms"].tolist() if fixed else None,
    )
    st.dataframe(shown, hide_index=True, key=state.DESIGN_DF)
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", shown.to_csv(index=False), "molecules.csv", "text/csv")
    d2.download_button("Download SDF", to_sdf(shown), "molecules.sdf", "chemical/x-mdl-sdfile")

if len(failed):
    with st.expander(f"{len(failed)} failed rows (not shown above)", expanded=False):
        st.caption(
            "Sampled again up to the round limit and still not a valid molecule containing the "
            "fragment."
        )
        st.dataframe(
            failed[["SMILES", "status", "rounds"]], hide_index=True, key=state.DESIGN_FAILED_DF
        )

with st.expander("Replay one generation position by position"):
    last = st.session_state[state.DESIGN_LAST]
    replay_key = str(last)
    if st.session_state[state.DESIGN_TRAJ_KEY] != replay_key:
        if st.button(
            "Replay",
            key=state.DESIGN_REPLAY,
            help=f"Samples one molecule with the same settings ({model.D} network passes).",
        ):
            st.session_state[state.DESIGN_TRAJ] = replay_generation(model, **last)
            st.session_state[state.DESIGN_TRAJ_KEY] = replay_key
    if st.session_state[state.DESIGN_TRAJ_KEY] == replay_key:
        traj = st.session_state[state.DESIGN_TRAJ]
        step = (
            st.slider("Step", 0, len(traj) - 1, len(traj) - 1, key=state.DESIGN_STEP)
            if len(traj) > 1
            else 0
        )
        tokens, filled, partial = replay_frame(model, tok, traj[step])
        st.code(tokens, language=None)
        st.caption(
            f"{filled} of {model.D} positions filled; the filled tokens read as "
            f"`{partial or '(nothing yet)'}`"
        )
        if partial:
            molecule_grid([partial], per_row=1, size=300)
