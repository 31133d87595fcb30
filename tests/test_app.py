"""The Streamlit app runs headless (AppTest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import install_default_molecule_model

ENTRY = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


@pytest.fixture()
def tiny_default(tmp_path, monkeypatch):
    """A tiny untrained molecule model as the default, and an empty model store."""
    from mam_core import MaM, NetworkConfig
    from mam_core.moses import load_moses
    from mam_core.tokenizers import SelfiesTokenizer

    tok = SelfiesTokenizer.build(load_moses("train", limit=200), drop_invalid=True)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    return install_default_molecule_model(model, tok, tmp_path, monkeypatch)


def test_ising_page_trains_samples_and_compares():
    at = AppTest.from_file(ENTRY, default_timeout=120)
    at.run()
    at.switch_page("../pages/ising.py")
    at.run()
    assert not at.exception
    assert "Device" in at.sidebar.caption[0].value
    at.slider(key="ising_n").set_value(3)
    at.number_input(key="ising_steps").set_value(20)
    at.button[0].click()  # the form's Train button
    at.run()
    assert not at.exception
    assert "ising_run" in at.session_state
    assert len(at.get("plotly_chart")) >= 3
    at.button(key="ising_compare").click().run()
    assert not at.exception
    assert any("Mean log f" in m.value for m in at.markdown)


def test_design_page_generates_molecules_with_a_fixed_fragment(tiny_default):
    at = AppTest.from_file(ENTRY, default_timeout=120)
    at.run()
    assert not at.exception
    at.text_input(key="design_fragment").set_value("c1ccccc1")
    at.number_input(key="design_n").set_value(8)
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    table = at.session_state["design_table"]
    assert len(table) == 8 and table["valid"].all()
    assert len(at.dataframe) == 1

    at.text_input(key="design_fragment").set_value("C1CC")  # unclosed ring: invalid SMILES
    at.button[0].click()
    at.run()
    assert not at.exception
    assert at.error and "fragment" in at.error[0].value


def _open(page: str) -> AppTest:
    at = AppTest.from_file(ENTRY, default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception
    return at


def test_likelihood_page_scores_compares_and_reports_bad_rows(tiny_default):
    at = _open("../pages/likelihood.py")
    at.text_area(key="lik_text").set_value("CCO\nc1ccccc1\nnot-a-molecule\nCC(=O)Oc1ccccc1C(=O)O\nCCN")
    at.checkbox(key="lik_arm").check()
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    result = at.session_state["lik_result"]
    table = result.table
    assert len(table) == 5 and table["log_p_mam"].notna().sum() == 4
    assert "RDKit cannot parse" in table.loc[2, "error"]
    assert result.seconds_arm is not None and result.speedup > 1
    assert at.warning and "could not be scored" in at.warning[0].value
    assert len(at.get("plotly_chart")) >= 2  # the scatter and the partial-molecule heatmap
    assert any("log p(x_S)" in m.label for m in at.metric)
    # the outlier table is the CLI's: same function, same columns, one row per input line
    from mam_core import load
    from mam_core.paths import default_model_path
    from mam_core.workflows.outliers import DEFAULT_SCORE, score_table

    page_table = at.session_state["lik_outliers"]
    cli_table = score_table(load(default_model_path()), table["input"].tolist(), DEFAULT_SCORE,
                            at.session_state["lik_calibration"])
    assert list(page_table.columns) == list(cli_table.columns) and page_table["smiles"].tolist() == table["input"].tolist()
    assert np.allclose(page_table["outlier_score"].to_numpy(), cli_table["outlier_score"].to_numpy(), equal_nan=True)
    assert page_table.loc[2, "percentile"] == 100  # unrepresentable ranks first

    at.text_area(key="lik_text").set_value("   \n")
    at.button[0].click()
    at.run()
    assert at.error and "no molecules given" in at.error[0].value

    at.text_input(key="lik_fragment").set_value("C1CC")
    at.run()
    assert any("fragment" in e.value for e in at.error)


def test_finetune_page_runs_in_the_background_and_saves(tiny_default):
    from mam_core.model_store import model_names

    at = _open("../pages/finetune.py")
    at.number_input(key="ft_steps").set_value(10)
    at.number_input(key="ft_batch").set_value(8)
    at.text_input(key="ft_fragment").set_value("c1ccccc1")
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    job = at.session_state["ft_job"]
    job.wait(120)
    assert job.error is None and job.step == 10
    assert [r["step"] for r in job.records][-1] == 10 and "reward_mean" in job.records[-1]
    at.run()
    assert any("Finished" in s.value for s in at.success)
    at.text_input(key="ft_name").set_value("my tuned/../model")
    at.button(key="ft_save").click().run()
    assert not at.exception
    from mam_core.model_store import sanitize_name

    assert sanitize_name("my tuned/../model") == "my_tuned_.._model"  # no path separators survive
    assert "my_tuned_.._model" in model_names()


def test_finetune_page_rejects_a_bad_smarts(tiny_default):
    at = _open("../pages/finetune.py")
    at.selectbox(key="ft_reward").set_value("substructure")
    at.text_input(key="ft_smarts").set_value("C((")
    at.button[0].click()
    at.run()
    assert at.error and "SMARTS" in at.error[0].value
    assert "ft_job" not in at.session_state


def test_models_page_lists_and_deletes(tiny_default):
    from mam_core.model_store import model_names, save_model

    save_model(tiny_default, "second")
    at = _open("../pages/models.py")
    names = list(at.dataframe[0].value["name"])
    assert names == ["default", "second"]
    at.button(key="del_second").click().run()
    assert not at.exception
    assert model_names() == ["default"]
