"""Fine-tune page: energy-based fine-tuning of the current model towards a reward, in the
background, with live curves, a stop button, a before/after logP histogram and saving.

The reward is a reward spec (:mod:`energies.spec`): the widgets write one, or the user uploads
one, and :func:`energies.build_reward` builds it, as ``mam train-eb --reward-spec`` does. The page
shows the spec it will use so that the same reward can be rerun from the command line."""

import copy

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import state
from app.jobs import Job, refresh_interval
from app.resources import current_model_name, require_molecule_model
from energies import RewardSpec, build_reward
from energies.spec import parse_reward_spec
from mam_core.core.config import TrainConfig
from mam_core.workflows.finetune import (fine_tune, fine_tune_method, fine_tune_precision,
                                         fine_tune_template)
from mam_core.workflows.model_store import ModelStoreError, save_model
from mam_core.chem.metrics import drug_like_quality
from mam_core.workflows.generate import generate_molecules, recommended_sampling
from mam_core.chem.tokenizers import TokenizationError

REWARDS = {
    "logp": "logP inside a window",
    "qed": "drug-likeness (QED)",
    "sa": "synthetic accessibility (SA below about 4)",
    "substructure": "contains a substructure (SMARTS)",
    "combined": "weighted mean: logP window + QED + SA",
}

#: SA is rewarded through a reverse sigmoid centred on 4, GenMol's "easy enough to make" limit.
SA_TRANSFORM = {"type": "reverse_sigmoid", "low": 2.0, "high": 6.0, "k": 0.5}

#: What each fine-tuning method does, in a chemist's words.
METHOD_NOTES = {
    "sampler": "Each step draws fresh molecules the way the Design page does (left to right, "
    "only strings that can still become a molecule) and moves the model towards the better ones.",
    "chains": "Each step updates persistent sample chains (block Gibbs) and moves the model "
    "towards the better ones.",
}

#: Largest spec file the page reads (a spec is a few hundred bytes).
MAX_SPEC_MB = 1


def widget_spec(reward: str, logp_window: tuple[float, float], logp_width: float, tau: float,
                smarts: str, w_qed: float, w_sa: float) -> dict:
    """The reward spec (plain data) the page's widgets describe."""
    logp = {"kind": "logp", "weight": 1.0,
            "transform": {"type": "window", "low": float(logp_window[0]),
                          "high": float(logp_window[1]), "width": float(logp_width)}}
    qed = {"kind": "qed", "weight": float(w_qed)}
    sa = {"kind": "sa", "weight": float(w_sa), "transform": dict(SA_TRANSFORM)}
    components = {
        "logp": [logp],
        "qed": [{**qed, "weight": 1.0}],
        "sa": [{**sa, "weight": 1.0}],
        "substructure": [{"kind": "smarts", "smarts": smarts.strip(), "weight": 1.0}],
        "combined": [logp, qed, sa],
    }[reward]
    return {"aggregate": "sum", "temperature": float(tau), "components": components}


def read_spec(upload, widgets: dict) -> RewardSpec:
    """The uploaded spec file if there is one, else the widgets' spec; ValueError if invalid."""
    if upload is None:
        return RewardSpec.from_dict(widgets)
    fmt = "json" if upload.name.lower().endswith(".json") else "toml"
    try:
        return parse_reward_spec(upload.getvalue().decode("utf-8"), fmt)
    except ValueError as err:
        raise ValueError(f"{upload.name}: {err}") from None


st.title("Fine-tune towards a reward")
model, tok = require_molecule_model()
job: Job | None = st.session_state[state.FT_JOB]
busy = job is not None and job.running

with st.form("finetune"):
    st.caption(f"Starting from **{current_model_name()}**; target p*(x) ∝ p_prior(x)^β · f(x), "
               "log f = score / τ (the choices below score in [0, 1]). "
               + METHOD_NOTES[fine_tune_method(model)])
    reward = st.selectbox(
        "Reward", list(REWARDS), format_func=lambda k: f"{k}: {REWARDS[k]}", key=state.FT_REWARD
    )
    c1, c2 = st.columns([2, 1])
    logp_window = c1.slider(
        "logP window",
        -10.0,
        10.0,
        (1.0, 3.0),
        0.25,
        key=state.FT_LOGP_WINDOW,
        help="Score 1 inside the window (oral drugs mostly lie between 1 and 3).",
    )
    logp_width = c2.number_input(
        "Window softness (logP units)",
        0.05,
        5.0,
        0.5,
        0.05,
        key=state.FT_LOGP_WIDTH,
        help="Outside the window the score halves this far from its edge.",
    )
    c3, c4 = st.columns(2)
    tau = c3.number_input(
        "τ (temperature)",
        0.01,
        10.0,
        0.1,
        0.05,
        key=state.FT_TAU,
        help="log f = score / τ: the best molecule is 1/τ above the worst in log f. Smaller τ "
        "pulls harder towards the reward.",
    )
    beta = c4.number_input(
        "β (prior weight)",
        0.0,
        5.0,
        1.0,
        0.1,
        key=state.FT_BETA,
        help="0 = reward only; larger stays closer to the pretrained model.",
    )
    c5, c6, c7 = st.columns(3)
    smarts = c5.text_input("SMARTS (substructure reward)", "c1ccccc1", key=state.FT_SMARTS)
    w_qed = c6.number_input("weight of QED (weighted mean)", 0.0, 10.0, 1.0, key=state.FT_WQED)
    w_sa = c7.number_input("weight of SA (weighted mean)", 0.0, 10.0, 0.5, key=state.FT_WSA)
    upload = st.file_uploader(
        "…or a reward spec file (.toml / .json), used instead of the choices above",
        type=["toml", "json"],
        max_upload_size=MAX_SPEC_MB,
        key=state.FT_SPEC_UPLOAD,
    )
    c8, c9 = st.columns(2)
    fragment = c8.text_input(
        "Fixed fragment (SMILES, optional)",
        "",
        key=state.FT_FRAGMENT,
        help="As on the Design page: [*] marks where new atoms may attach (fragment-block models); "
        "two dot-separated pieces ask for a linker.",
    )
    start = c9.number_input(
        "Fragment start position (SELFIES / SMILES models)", 0, model.D - 1, 0, key=state.FT_START
    )
    c10, c11, c12 = st.columns(3)
    steps = c10.number_input(
        "Steps",
        10,
        5000,
        100,
        10,
        key=state.FT_STEPS,
        help="SMILES and fragment-block models draw fresh molecules every step, as this app "
        "does (about 10 s a step at batch 32 on 2 CPU cores with fast bfloat16, 20 s "
        "without); SELFIES models move persistent "
        "chains (about 0.5 s at batch 64).",
    )
    batch = c11.number_input("Batch size", 8, 512, 32, 8, key=state.FT_BATCH)
    lr = c12.number_input(
        "Learning rate",
        1e-6,
        1e-2,
        1e-4,
        format="%.6f",
        key=state.FT_LR,
        help="1e-4 moves a pretrained model steadily; 2e-4 and above let it drift tens of nats "
        "from the prior within 20 steps, and its molecules stop looking like drugs.",
    )
    start_clicked = st.form_submit_button("Start fine-tuning", type="primary", disabled=busy)

widgets = widget_spec(reward, logp_window, logp_width, tau, smarts, w_qed, w_sa)
try:
    spec, spec_error = read_spec(upload, widgets), None
except ValueError as err:
    spec, spec_error = None, err

with st.expander("Reward specification (TOML / JSON)"):
    if spec is None:
        st.caption(f"Not a valid reward spec yet: {spec_error}")
    else:
        st.caption(f"{spec.describe()}. Rerun it from the command line with "
                   "`mam train-eb --reward-spec reward.toml --init MODEL.pt ...`.")
        as_toml, as_json = st.tabs(["TOML", "JSON"])
        as_toml.code(spec.to_toml(), language="toml")
        as_json.code(spec.to_json(), language="json")
        st.download_button("Download reward.toml", spec.to_toml(), "reward.toml",
                           mime="application/toml", key=state.FT_SPEC_DOWNLOAD)

if start_clicked:
    try:
        if spec is None:
            raise spec_error
        energy = build_reward(spec, tokenizer=tok)
        # the same plan as the Design page: fixed blocks for fragment-block models (new atoms
        # only at the attachment points), a capped fragment at `start` for SELFIES / SMILES
        template = fine_tune_template(model, fragment.strip(), int(start))
    except (TokenizationError, ValueError) as err:
        st.error(f"Cannot start: {err}")
    else:
        cfg = TrainConfig(
            steps=int(steps),
            batch_size=int(batch),
            lr=float(lr),
            sc_weight=1.0,
            warmup=min(10, int(steps) // 10),  # Adam's first steps are its least reliable
            log_every=max(1, int(steps) // 100),
            precision=fine_tune_precision(model),
        )
        base = model

        def run(on_log, stop_file):
            tuned = copy.deepcopy(base)
            fine_tune(
                tuned,
                energy,
                cfg,
                beta=float(beta),
                template=template,
                prior=base,
                on_log=on_log,
                stop_file=stop_file,
                progress=False,
            )
            return tuned

        st.session_state[state.FT_JOB] = job = Job(run, int(steps))
        st.session_state[state.FT_SETUP] = {
            "fragment": fragment.strip() or None,
            "start": int(start),
            "energy": energy.description,
            "spec": spec.to_dict(),
            "base": current_model_name(),
        }
        busy = True


def curves(records: list[dict]) -> go.Figure:
    fig = go.Figure()
    steps = [r["step"] for r in records]
    for key, name in (("reward_mean", "mean reward log f"),
                      ("kl_minus_logz", "KL − log Z (estimate)"),
                      ("sc_abs_err", "self-consistency |e|")):
        fig.add_scatter(x=steps, y=[r.get(key) for r in records], name=name, mode="lines")
    fig.update_layout(xaxis_title="step", height=360, margin=dict(t=30))
    return fig


@st.fragment(run_every=refresh_interval(job))  # idle (no reruns) when no job runs
def live_view():
    job: Job | None = st.session_state[state.FT_JOB]
    if job is None:
        return
    st.progress(
        job.progress,
        text=f"step {job.step} / {job.total_steps}" + (" — running" if job.running else ""),
    )
    if job.records:
        st.plotly_chart(curves(job.records), key=f"ft_curves_{len(job.records)}")
    if job.running:
        if st.button("Stop", key=state.FT_STOP):
            job.stop()
    elif st.session_state[state.FT_SHOWN] is not job:
        st.session_state[state.FT_SHOWN] = job
        st.rerun()


live_view()

job = st.session_state[state.FT_JOB]
if job is not None and not job.running:
    setup = st.session_state[state.FT_SETUP]
    if job.error:
        st.error(f"Fine-tuning failed: {job.error}")
    else:
        st.success(f"Finished at step {job.step} ({setup.get('energy', '')}).")
        if st.button("Compare before / after (256 samples each)", key=state.FT_COMPARE):
            with st.spinner("Sampling…"):  # drawn as the Design page draws (one draw each)
                settings = recommended_sampling(model)
                before, after = (
                    generate_molecules(m, 256, setup.get("fragment"), setup.get("start", 0),
                                       seed=0, max_rounds=1, distinct=False, **settings)
                    for m in (model, job.result)
                )
            fig = go.Figure()
            for name, table in (("before", before), ("after", after)):
                fig.add_histogram(
                    x=table["logP"].dropna(), name=name, opacity=0.6, histnorm="probability density"
                )
            fig.update_layout(
                barmode="overlay", xaxis_title="logP (Crippen)", title="logP of samples"
            )
            st.plotly_chart(fig, key=state.FT_HIST)
            st.caption(
                f"Mean logP {np.nanmean(before['logP']):.2f} → {np.nanmean(after['logP']):.2f}; "
                f"mean QED {np.nanmean(before['QED']):.2f} → {np.nanmean(after['QED']):.2f}; "
                f"drug-like (QED ≥ 0.6, SA ≤ 4, unique) "
                f"{drug_like_quality(before['SMILES'].tolist()):.2f} → "
                f"{drug_like_quality(after['SMILES'].tolist()):.2f}"
            )
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Save as", "finetuned", key=state.FT_NAME)
        if c2.button("Save model", key=state.FT_SAVE):
            try:
                path = save_model(job.result, name)
            except ModelStoreError as err:
                st.error(str(err))
            else:
                st.success(f"Saved as {path.stem}. Pick it in the sidebar to design with it.")
