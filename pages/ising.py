"""Ising page: train a MaM energy-based on a small lattice, watch any-order generation, and
compare its samples with a Gibbs ground truth."""

import pandas as pd
import plotly.express as px
import streamlit as st

from app import state
from app.ui import lattice_figure
from mam_core.workflows.ising_demo import compare_with_gibbs, train_ising

st.title("Ising lattice: energy-based MaM")
st.caption(
    "Target p*(x) ∝ exp(sᵀJs + bᵀs) on a periodic n×n lattice. The MaM learns it from the energy "
    "alone (no data): REINFORCE on the one-pass marginal plus the self-consistency penalty."
)

with st.form("ising"):
    c1, c2, c3, c4 = st.columns(4)
    n = c1.slider("Lattice size n", 3, 8, 4, key=state.ISING_N)
    sigma = c2.number_input("Coupling σ", 0.0, 1.0, 0.3, 0.05, key=state.ISING_SIGMA)
    bias = c3.number_input("Field b", -1.0, 1.0, 0.2, 0.05, key=state.ISING_BIAS)
    steps = c4.number_input("Training steps", 10, 3000, 300, 10, key=state.ISING_STEPS)
    go_train = st.form_submit_button("Train", type="primary")

if go_train:
    bar = st.progress(0.0, text="training…")
    run = train_ising(
        n,
        float(sigma),
        float(bias),
        int(steps),
        on_log=lambda rec: bar.progress(min(rec["step"] / steps, 1.0), text=f"step {rec['step']}"),
    )
    bar.empty()
    st.session_state[state.ISING_RUN] = run
    st.session_state[state.ISING_CMP] = None

run = st.session_state[state.ISING_RUN]
if run is None:
    st.info("Choose a lattice and press **Train** (300 steps take a few seconds on a CPU).")
    st.stop()

hist = pd.DataFrame(run.result.history)
st.subheader("Training curves")
cols = st.columns(2)
cols[0].plotly_chart(px.line(hist, x="step", y="kl_minus_logz",
                             title="KL estimate − log Z (lower is better)"))
cols[1].plotly_chart(px.line(hist, x="step", y="sc_abs_err",
                             title="Self-consistency error |e| (nats)"))

st.subheader("Any-order generation")
order = st.radio("Order", ["random", "l2r", "r2l"], horizontal=True, key=state.ISING_ORDER)
seed = int(st.number_input("Seed", 0, 10_000, 0, key=state.ISING_SEED))
x, traj = run.model.sample(1, order=order, seed=seed, return_trajectory=True)
step = st.slider("Step", 0, len(traj) - 1, len(traj) - 1, key=state.ISING_STEP)
side = run.energy.n  # the trained lattice's size (the slider may show another one now)
st.caption(f"Trained on a {side}×{side} lattice.")
st.plotly_chart(lattice_figure(traj[step][0], side))

if st.button("Compare with Gibbs ground truth", key=state.ISING_COMPARE):
    st.session_state[state.ISING_CMP] = compare_with_gibbs(run)
cmp = st.session_state[state.ISING_CMP]
if cmp is not None:
    df = pd.concat(
        [
            pd.DataFrame({"log f(x)": cmp["model_log_f"], "source": "MaM samples"}),
            pd.DataFrame({"log f(x)": cmp["gibbs_log_f"], "source": "Gibbs"}),
        ]
    )
    st.plotly_chart(px.histogram(df, x="log f(x)", color="source", barmode="overlay", nbins=40))
    st.write(
        f"Mean log f: MaM {cmp['model_log_f'].mean():.3f} vs Gibbs "
        f"{cmp['gibbs_log_f'].mean():.3f}; mean magnetisation: MaM "
        f"{cmp['model_magnetisation'].mean():.3f} vs Gibbs {cmp['gibbs_magnetisation'].mean():.3f}"
    )
