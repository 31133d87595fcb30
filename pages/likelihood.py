"""Likelihood page: score pasted or uploaded molecules with MaM (one pass) and, optionally, the
exact AO-ARM (D passes); compare, rank outliers, and inspect a partial molecule's conditionals."""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import state
from app.resources import require_molecule_model, warm_encoding_pool
from mam_core.workflows.scoring import (
    ARM_ROWS,
    PAGE_SPELLINGS,
    MAX_ROWS,
    MAX_UPLOAD_BYTES,
    ScoringInputError,
    agreement,
    decode_upload,
    parse_smiles_text,
    position_distributions,
    score_molecules,
)
from mam_core.chem.tokenizers import TokenizationError, make_template
from mam_core.workflows.outliers import (
    DEFAULT_SCORE,
    SCORE_LABELS,
    ensure_calibration,
    score_table,
    scores_for,
)

EXAMPLE = (
    "CCOC(=O)CNC(=O)c1cc(N)cn1C1CC1\nCCN(CC(=O)OC)C(=O)c1cccc(C)c1N\nCCN(Cc1ccc2c(c1)OCO2)C(=O)Cn1cnnn1\n"
    "COc1ccccc1Nc1nc(=O)c(C(C)(C)C)n[nH]1\nCc1cccc(N2CCN(C(=O)Cc3ccc[nH]3)CC2)c1C\n"
    "CC(=O)Oc1ccccc1C(=O)O\nnot-a-molecule"
)

st.title("Likelihood")
model, tok = require_molecule_model()
warm_encoding_pool()

with st.form("likelihood"):
    text = st.text_area("SMILES, one per line", EXAMPLE, height=160, key=state.LIK_TEXT)
    upload = st.file_uploader(
        f"…or a CSV with a SMILES column (≤ {MAX_ROWS:,} rows)",
        type=["csv", "smi", "txt"],
        max_upload_size=MAX_UPLOAD_BYTES // 2**20,
        key=state.LIK_UPLOAD,
    )
    c1, c2 = st.columns(2)
    with_arm = c1.checkbox(
        f"Also compute the exact AO-ARM likelihood (D passes, slow; first {ARM_ROWS} molecules)",
        True, key=state.LIK_ARM
    )
    orders = c2.number_input("AO-ARM orders to average", 1, 8, 1, key=state.LIK_ORDERS)
    spellings = 0
    if tok.many_spellings:
        spellings = st.number_input(
            "Fragment orders per molecule for log p(molecule) (0: one string only)", 0, 32,
            PAGE_SPELLINGS, key=state.LIK_SPELLINGS,
            help="This model writes a molecule's fragments in any order, so the molecule's "
                 "probability is the sum over those strings: one string alone understates it by "
                 "about log n! nats for n fragments, which ranks molecules of many fragments "
                 "too low. Each order scored costs one more pass.")
    choices = [s for s in scores_for(model) if s != "raw"]
    score_name = st.selectbox(
        "Outlier score",
        choices,
        index=choices.index(DEFAULT_SCORE),
        format_func=lambda s: f"{s}: {SCORE_LABELS[s]}",
        key=state.LIK_SCORE,
    )
    submitted = st.form_submit_button("Score", type="primary")

if submitted:
    try:
        source = decode_upload(upload.name, upload.getvalue()) if upload is not None else text
        smiles = parse_smiles_text(source)
        with st.spinner(f"Scoring {len(smiles)} molecules…"):
            st.session_state[state.LIK_RESULT] = score_molecules(
                model, smiles, with_arm=with_arm, num_orders=int(orders), arm_limit=ARM_ROWS,
                spellings=int(spellings),
            )
            cal_key = ("lik_calibration", id(model))
            if st.session_state.get("lik_calibration_key") != cal_key:
                st.session_state["lik_calibration"] = ensure_calibration(model)
                st.session_state["lik_calibration_key"] = cal_key
            st.session_state["lik_outliers"] = score_table(
                model, smiles, score_name, st.session_state["lik_calibration"]
            )
            st.session_state["lik_outlier_score"] = score_name
    except (ScoringInputError, ValueError) as err:
        st.error(str(err))

result = st.session_state[state.LIK_RESULT]
if result is not None:
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "MaM (one pass)", f"{result.seconds_mam * 1000:.1f} ms", help=f"{result.n_scored} molecules"
    )
    if result.seconds_arm is not None:
        passes = (f"{model.D} passes" if result.num_orders == 1
                  else f"{result.num_orders} orders × {model.D} passes")
        c2.metric(f"AO-ARM ({passes})", f"{result.seconds_arm * 1000:.0f} ms",
                  help=f"the first {result.n_arm} molecules")
        c3.metric("Speed-up", f"{result.speedup:.1f}×",
                  help=f"one AO-ARM order ({model.D} passes) over MaM on the same "
                       f"{result.n_arm} molecules")
    n_bad = int((result.table["error"] != "").sum())
    if n_bad:
        st.warning(f"{n_bad} input(s) could not be scored; the reason is in the error column.")
    outliers = st.session_state.get("lik_outliers")
    cal = st.session_state.get("lik_calibration")
    if outliers is not None and cal is not None:
        st.subheader("Outlier screening")
        used = st.session_state.get("lik_outlier_score", DEFAULT_SCORE)
        st.caption(f"Outlier score {used}: {SCORE_LABELS[used]}; higher = more atypical. "
                   "Percentile: share of training molecules scoring at or below it "
                   f"({cal.source}). Molecules the model cannot represent rank first.")
        train = pd.DataFrame({"outlier score": cal.train_scores[used],
                              "set": "training molecules"})
        lib = pd.DataFrame({"outlier "
                            "score": outliers["outlier_score"].replace(np.inf, np.nan).dropna(),
                            "set": "your molecules"})
        fig = px.histogram(pd.concat([train, lib]), x="outlier score", color="set",
                           barmode="overlay", histnorm="probability density", nbins=60,
                           title="Your molecules against the training set")
        st.plotly_chart(fig, key="lik_outlier_hist")
        pmin = st.slider("Show molecules above this percentile", 0, 100, 0, key="lik_pmin")
        shown = outliers[outliers["percentile"] >= pmin]
        shown = shown.sort_values("outlier_score", ascending=False)
        st.dataframe(shown, hide_index=True, key="lik_outlier_table")
        st.download_button("Download outlier table (CSV)",
                           shown.drop(columns=["n_tokens"]).to_csv(index=False),
                           "outliers.csv", "text/csv", key="lik_outlier_download")
    table = result.table.sort_values("outlier_rank", na_position="last")
    if "log_p_molecule" in result.table:
        st.caption("MaM and AO-ARM log-likelihoods (nats) of the canonical string, and "
                   "`log_p_molecule`: the MaM summed over the molecule's fragment orders "
                   f"(`block_orders` of them in all; {result.seconds_molecule:.1f} s), least "
                   "likely molecule first.")
    else:
        st.caption("MaM and AO-ARM log-likelihoods (nats), least likely first.")
    st.dataframe(table, hide_index=True, key=state.LIK_TABLE)
    st.download_button("Download CSV", table.to_csv(index=False), "likelihoods.csv", "text/csv")
    if result.seconds_arm is not None:
        stats = agreement(result.table)
        fig = px.scatter(
            result.table.dropna(subset=["log_p_arm"]),
            x="log_p_arm",
            y="log_p_mam",
            hover_name="input",
            labels={"log_p_arm": "AO-ARM log p(x) (nats)", "log_p_mam": "MaM log p(x) (nats)"},
            title=f"MaM vs AO-ARM: Spearman {stats['spearman']:.3f}, "
            f"Pearson {stats['pearson']:.3f}",
        )
        lo = float(result.table[["log_p_mam", "log_p_arm"]].min().min())
        hi = float(result.table[["log_p_mam", "log_p_arm"]].max().max())
        fig.add_trace(
            go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(dash="dash"))
        )
        st.plotly_chart(fig, key=state.LIK_SCATTER)

st.subheader("A partial molecule: conditionals at every position")
c1, c2 = st.columns([3, 1])
fragment = c1.text_input("Observed fragment (SMILES)", "c1ccccc1", key=state.LIK_FRAGMENT)
start = c2.number_input("Start position", 0, model.D - 1, 0, key=state.LIK_START)
if fragment.strip():
    try:
        template = make_template(tok, fragment.strip(), start=int(start))
    except (TokenizationError, ValueError) as err:
        st.error(f"Cannot use this fragment: {err}")
    else:
        probs, log_marginal = position_distributions(model, template)
        st.metric("log p(x_S), one pass", f"{log_marginal:.2f} nats")
        fig = px.imshow(
            probs.T,
            aspect="auto",
            color_continuous_scale="Viridis",
            labels=dict(x="position", y="token", color="p(x_i | x_S)"),
            y=list(tok.vocab.tokens),
            title="p(x_i | x_S) per position (observed positions one-hot)",
        )
        st.plotly_chart(fig, key=state.LIK_HEATMAP)
