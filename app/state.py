"""Every session-state key the app uses, declared once, and their starting values.

Pages and helpers refer to these constants instead of typing key strings, so a key has one
spelling and one owner. Two kinds of key live here:

* results pages keep between reruns (a generated table, a training job); ``init_state()``
  gives them their starting value, once per session;
* widget keys (``st.text_input(..., key=DESIGN_FRAGMENT)``). Streamlit owns their values and
  drops them when the user opens another page, so nothing durable may be read from them:
  a stored result carries its own settings (the Ising run keeps its lattice size, say).
"""

from __future__ import annotations

import streamlit as st

__all__ = ["init_state", "RESULT_DEFAULTS"]

# ------------------------------------------------------------------------------ sidebar
MODEL_NAME = "model_name"  # the picked model (sidebar selectbox)

# ------------------------------------------------------------------------------ design
DESIGN_FRAGMENT = "design_fragment"  # fragment SMILES text box
DESIGN_EDITOR = "design_editor"  # the molecule editor
DESIGN_EDITOR_SEEN = "design_editor_seen"  # last value the editor sent (to spot a new drawing)
DESIGN_SHOW_EDITOR = "design_show_editor"  # toggle: show the molecule editor
DESIGN_START = "design_start"
DESIGN_ORDER = "design_order"
DESIGN_CUSTOM = "design_custom"
DESIGN_N = "design_n"
DESIGN_TEMPERATURE = "design_temperature"
DESIGN_TOP_P = "design_top_p"
DESIGN_SEED = "design_seed"
DESIGN_LOGP = "design_logp"
DESIGN_QED = "design_qed"
DESIGN_DF = "design_df"
DESIGN_FAILED_DF = "design_failed_df"
DESIGN_REPLAY = "design_replay"  # button
DESIGN_STEP = "design_step"
DESIGN_TABLE = "design_table"  # result: the last generated table
DESIGN_LAST = "design_last"  # result: the settings that produced it
DESIGN_TRAJ = "design_traj"  # result: one replayed generation (list of (D,) states)
DESIGN_TRAJ_KEY = "design_traj_key"  # which settings the replay belongs to

# ------------------------------------------------------------------------------ likelihood
LIK_TEXT = "lik_text"
LIK_UPLOAD = "lik_upload"
LIK_ARM = "lik_arm"
LIK_ORDERS = "lik_orders"
LIK_SPELLINGS = "lik_spellings"
LIK_SCORE = "lik_score"
LIK_TABLE = "lik_table"
LIK_SCATTER = "lik_scatter"
LIK_FRAGMENT = "lik_fragment"
LIK_START = "lik_start"
LIK_HEATMAP = "lik_heatmap"
LIK_RESULT = "lik_result"  # result: ScoreResult

# ------------------------------------------------------------------------------ fine-tune
FT_REWARD = "ft_reward"
FT_LOGP_WINDOW = "ft_logp_window"
FT_LOGP_WIDTH = "ft_logp_width"
FT_TAU = "ft_tau"
FT_BETA = "ft_beta"
FT_SMARTS = "ft_smarts"
FT_WQED = "ft_wqed"
FT_WSA = "ft_wsa"
FT_SPEC_UPLOAD = "ft_spec_upload"
FT_SPEC_DOWNLOAD = "ft_spec_download"
FT_FRAGMENT = "ft_fragment"
FT_START = "ft_start"
FT_STEPS = "ft_steps"
FT_BATCH = "ft_batch"
FT_LR = "ft_lr"
FT_STOP = "ft_stop"
FT_COMPARE = "ft_compare"
FT_HIST = "ft_hist"
FT_NAME = "ft_name"
FT_SAVE = "ft_save"
FT_JOB = "ft_job"  # result: the background Job
FT_SETUP = "ft_setup"  # result: what the job was started with
FT_SHOWN = "ft_shown"  # the finished job the page has already redrawn for

# ------------------------------------------------------------------------------ models
MODELS_TABLE = "models_table"
MODELS_UPLOAD = "models_upload"
MODELS_ADD = "models_add"

# ------------------------------------------------------------------------------ ising
ISING_N = "ising_n"
ISING_SIGMA = "ising_sigma"
ISING_BIAS = "ising_bias"
ISING_STEPS = "ising_steps"
ISING_ORDER = "ising_order"
ISING_SEED = "ising_seed"
ISING_STEP = "ising_step"
ISING_COMPARE = "ising_compare"
ISING_RUN = "ising_run"  # result: IsingRun (model, energy with its own lattice size, history)
ISING_CMP = "ising_cmp"  # result: comparison with Gibbs

#: Results and bookkeeping with their starting values (widget keys are not listed: Streamlit
#: sets those from each widget's default).
RESULT_DEFAULTS: dict[str, object] = {
    DESIGN_FRAGMENT: "",
    DESIGN_EDITOR_SEEN: None,
    DESIGN_TABLE: None,
    DESIGN_LAST: None,
    DESIGN_TRAJ: None,
    DESIGN_TRAJ_KEY: None,
    LIK_RESULT: None,
    FT_JOB: None,
    FT_SETUP: None,
    FT_SHOWN: None,
    ISING_RUN: None,
    ISING_CMP: None,
}


def init_state() -> None:
    """Give every result key its starting value once per session (later calls keep values)."""
    for key, value in RESULT_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value
