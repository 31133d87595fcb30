"""Models page: the default and stored models, their metadata and training history; delete,
download and upload (loaded safely: weights only, never code)."""

import pandas as pd
import streamlit as st

from app import state
from app.resources import model_infos
from app.ui import training_figure
from mam_core.workflows.model_store import (
    MAX_IMPORT_BYTES,
    ModelStoreError,
    delete_model,
    import_model,
    models_dir,
)
from mam_core.workflows.monitor import stage_table, training_curves

st.title("Models")
st.caption(f"Stored models live in `{models_dir()}` (set `MAM_MODELS_DIR` to change it).")

infos = model_infos()  # cached until a checkpoint file changes
if not infos:
    st.info("No models yet.")
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": i.name,
                "default": i.is_default,
                "size (MB)": i.size_mb,
                "D": i.D,
                "K": i.K,
                "tokenizer": i.tokenizer,
                "training": i.stages(),
                "problem": i.error or "",
            }
            for i in infos
        ]
    ),
    hide_index=True,
    key=state.MODELS_TABLE,
)

for info in infos:
    with st.expander(f"{info.name}" + (" (shipped default)" if info.is_default else "")):
        if info.error:
            st.error(info.error)
            continue
        if info.training:
            curves = training_curves(info.training)
            if not curves.empty:
                st.plotly_chart(training_figure(curves), key=f"curves_{info.name}")
            st.dataframe(stage_table(info.training), hide_index=True,
                         key=f"stages_{info.name}")
        st.download_button(
            "Download", info.path.read_bytes, f"{info.name}.pt", key=f"dl_{info.name}"
        )  # read on click
        if not info.is_default and st.button("Delete", key=f"del_{info.name}"):
            try:
                delete_model(info.name)
            except ModelStoreError as err:
                st.error(str(err))
            else:
                st.rerun()

st.subheader("Upload a model")
upload = st.file_uploader(
    "A MaM Studio checkpoint (.pt)",
    type=["pt"],
    max_upload_size=MAX_IMPORT_BYTES // 2**20,
    key=state.MODELS_UPLOAD,
)
if upload is not None and st.button("Add to my models", key=state.MODELS_ADD):
    try:
        path = import_model(upload.name, upload.getvalue())
    except ModelStoreError as err:
        st.error(f"Not added: {err}")
    else:
        st.success(f"Added as {path.stem}.")
