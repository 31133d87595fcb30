"""MaM Studio: the Streamlit router.  Run with ``streamlit run app/main.py``."""

import streamlit as st

from app.resources import device_label

st.set_page_config(page_title="MaM Studio", page_icon="🧪", layout="wide")
st.sidebar.title("MaM Studio")
st.sidebar.caption(f"Device: {device_label()}")

pages = {
    "Molecules": [st.Page("../pages/design.py", title="Design", icon="🧪", url_path="design", default=True)],
    "Lattices": [st.Page("../pages/ising.py", title="Ising", icon="🧲", url_path="ising")],
}
st.navigation(pages).run()
