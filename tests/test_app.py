"""The Streamlit app runs headless (AppTest)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ENTRY = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


def test_ising_page_trains_samples_and_compares():
    at = AppTest.from_file(ENTRY, default_timeout=120)
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
