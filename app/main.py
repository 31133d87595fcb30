"""MaM Studio: the Streamlit router.  Run with ``streamlit run app/main.py``.

The start page is served at the root URL; every tool page has its own path (``/design``,
``/likelihood``, ``/finetune``, ``/models``, ``/ising``), so links to them open directly.
Streamlit serves its default page at the root only, which is why that page is not Design.
"""

import streamlit as st

from app import state
from app.resources import device_label
from mam_core.workflows.model_store import model_names

st.set_page_config(page_title="MaM Studio", page_icon="🧪", layout="wide")
state.init_state()
st.sidebar.title("MaM Studio")
st.sidebar.caption(f"Device: {device_label()}")
names = model_names()
if names:
    if st.session_state.get(state.MODEL_NAME) not in names:
        st.session_state[state.MODEL_NAME] = names[0]
    st.sidebar.selectbox(
        "Model", names, key=state.MODEL_NAME, help="Fine-tuned and uploaded models appear here."
    )

pages = {
    "": [st.Page("../pages/home.py", title="Start", icon="🏠", default=True)],
    "Molecules": [
        st.Page("../pages/design.py", title="Design", icon="🧪", url_path="design"),
        st.Page("../pages/likelihood.py", title="Likelihood", icon="📈", url_path="likelihood"),
        st.Page("../pages/finetune.py", title="Fine-tune", icon="🎯", url_path="finetune"),
        st.Page("../pages/models.py", title="Models", icon="🗂️", url_path="models"),
    ],
    "Lattices": [st.Page("../pages/ising.py", title="Ising", icon="🧲", url_path="ising")],
}
st.navigation(pages).run()
