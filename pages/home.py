"""Start page: what each page does, with links (served at the app's root URL)."""

import streamlit as st

from app.resources import current_model_name

st.title("MaM Studio")
st.write(
    "Generative Marginalization Models for molecular design: one network pass gives the "
    "likelihood of any partial molecule, and generation fills positions in any order."
)
st.caption(f"Current model: **{current_model_name()}** (change it in the sidebar).")
st.page_link("../pages/design.py", label="Design: grow, decorate or link a fragment", icon="🧪")
st.page_link(
    "../pages/likelihood.py", label="Likelihood: score molecules, find outliers", icon="📈"
)
st.page_link("../pages/finetune.py", label="Fine-tune: steer the model towards a reward", icon="🎯")
st.page_link("../pages/models.py", label="Models: history, download, upload", icon="🗂️")
st.page_link("../pages/ising.py", label="Ising: an energy-based MaM on a lattice", icon="🧲")
