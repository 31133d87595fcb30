"""Ising page: train a MaM energy-based on a small lattice, watch any-order generation, and
compare its samples with a Gibbs ground truth."""

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from mam_core.demos import compare_with_gibbs, train_ising

st.title("Ising lattice: energy-based MaM")
st.caption(
    "Target p*(x) ∝ exp(sᵀJs + bᵀs) on a periodic n×n lattice. The MaM learns it from the energy "
    "alone (no data): REINFORCE on the one-pass marginal plus the self-consistency penalty."
)

with st.form("ising"):
    c1, c2, c3, c4 = st.columns(4)
    n = c1.slider("Lattice size n", 3, 8, 4, key="ising_n")
    sigma = c2.number_input("Coupling σ", 0.0, 1.0, 0.3, 0.05, key="ising_sigma")
    bias = c3.number_input("Field b", -1.0, 1.0, 0.2, 0.05, key="ising_bias")
    steps = c4.number_input("Training steps", 10, 3000, 300, 10, key="ising_steps")
    go_train = st.form_submit_button("Train", type="primary")

if go_train:
    bar = st.progress(0.0, text="training…")
    run = train_ising(
        n, float(sigma), float(bias), int(steps),
        on_log=lambda rec: bar.progress(min(rec["step"] / steps, 1.0), text=f"step {rec['step']}"),
    )
    bar.empty()
    st.session_state["ising_run"] = run
    st.session_state.pop("ising_cmp", None)

run = st.session_state.get("ising_run")
if run is None:
    st.info("Choose a lattice and press **Train** (300 steps take a few seconds on a CPU).")
    st.stop()

hist = pd.DataFrame(run.result.history)
st.subheader("Training curves")
cols = st.columns(2)
cols[0].plotly_chart(px.line(hist, x="step", y="kl_minus_logz", title="KL estimate − log Z (lower is better)"))
cols[1].plotly_chart(px.line(hist, x="step", y="sc_abs_err", title="Self-consistency error |e| (nats)"))

st.subheader("Any-order generation")
order = st.radio("Order", ["random", "l2r", "r2l"], horizontal=True, key="ising_order")
x, traj = run.model.sample(1, order=order, seed=int(st.number_input("Seed", 0, 10_000, 0, key="ising_seed")), return_trajectory=True)
step = st.slider("Step", 0, len(traj) - 1, len(traj) - 1, key="ising_step")
grid = traj[step][0].cpu().reshape(n, n).numpy()
fig = go.Figure(go.Heatmap(z=grid, zmin=0, zmax=2, colorscale=[[0, "#2b6cb0"], [0.5, "#f6e05e"], [1, "#bbbbbb"]], showscale=False))
fig.update_layout(title="blue = −1, yellow = +1, grey = not yet generated", width=420, height=420, yaxis_autorange="reversed")
st.plotly_chart(fig)

if st.button("Compare with Gibbs ground truth", key="ising_compare"):
    st.session_state["ising_cmp"] = compare_with_gibbs(run)
cmp = st.session_state.get("ising_cmp")
if cmp is not None:
    df = pd.concat([
        pd.DataFrame({"log f(x)": cmp["model_log_f"], "source": "MaM samples"}),
        pd.DataFrame({"log f(x)": cmp["gibbs_log_f"], "source": "Gibbs"}),
    ])
    st.plotly_chart(px.histogram(df, x="log f(x)", color="source", barmode="overlay", nbins=40))
    st.write(
        f"Mean log f: MaM {cmp['model_log_f'].mean():.3f} vs Gibbs {cmp['gibbs_log_f'].mean():.3f}; "
        f"mean magnetisation: MaM {cmp['model_magnetisation'].mean():.3f} vs Gibbs {cmp['gibbs_magnetisation'].mean():.3f}"
    )
