"""The Streamlit app runs headless (AppTest)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ENTRY = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


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


def test_design_page_generates_molecules_with_a_fixed_fragment(tmp_path, monkeypatch):
    from mam_core import MaM, NetworkConfig, save
    from mam_core.molecules import attach_tokenizer
    from mam_core.moses import load_moses
    from mam_core.tokenizers import SelfiesTokenizer

    tok = SelfiesTokenizer.build(load_moses("train", limit=200), drop_invalid=True)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    save(model, tmp_path / "m.pt")
    monkeypatch.setenv("MAM_DEFAULT_MODEL", str(tmp_path / "m.pt"))

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
