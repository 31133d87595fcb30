"""The Streamlit app runs headless (AppTest): every page with every model kind, the Design
page's fragment flow, and the defects each fixed with the test that would have caught it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import install_default_molecule_model
from streamlit.testing.v1 import AppTest

ENTRY = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
PAGES = {
    "start": "../pages/home.py",
    "design": "../pages/design.py",
    "likelihood": "../pages/likelihood.py",
    "finetune": "../pages/finetune.py",
    "models": "../pages/models.py",
    "ising": "../pages/ising.py",
}
MOLECULE_PAGES = ("design", "likelihood", "finetune")
TITLES = {
    "start": "MaM Studio",
    "design": "Design molecules",
    "likelihood": "Likelihood",
    "finetune": "Fine-tune towards a reward",
    "models": "Models",
    "ising": "Ising lattice: energy-based MaM",
}


@pytest.fixture()
def tiny_default(tmp_path, monkeypatch):
    """A tiny untrained SELFIES molecule model as the default, and an empty model store."""
    from mam_core import MaM, NetworkConfig
    from mam_core.chem.moses import load_moses
    from mam_core.chem.tokenizers import SelfiesTokenizer

    tok = SelfiesTokenizer.build(load_moses("train", limit=200), drop_invalid=True)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    return install_default_molecule_model(model, tok, tmp_path, monkeypatch)


@pytest.fixture()
def fragment_block_default(tmp_path, monkeypatch):
    """A tiny untrained fragment-block model as the default: it misses most fragments."""
    from mam_core import MaM, NetworkConfig
    from mam_core.chem.training_data import fragment_block_dataset
    from mam_core.chem.moses import load_moses

    tok, _ = fragment_block_dataset(load_moses("train", limit=200), copies=1, seed=0, max_length=64)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    return install_default_molecule_model(model, tok, tmp_path, monkeypatch)


def _store_lattice_model(name: str = "lattice") -> None:
    """A model with no molecule tokenizer (what the Ising page trains) in the model store."""
    from mam_core import MaM, NetworkConfig
    from mam_core.workflows.model_store import save_model

    save_model(MaM(NetworkConfig(D=9, K=2, arch="mlp", hidden=16, n_layers=1)), name)


def _open(page: str, model: str | None = None) -> AppTest:
    at = AppTest.from_file(ENTRY, default_timeout=120)
    at.run()
    if model is not None:
        at.selectbox(key="model_name").set_value(model).run()
    at.switch_page(PAGES[page])
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture()
def drawn_grids(monkeypatch):
    """Records what every molecule grid drew: its molecules and highlighted atoms."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    calls = []
    real = Draw.MolsToGridImage

    def spy(mols, **kw):
        calls.append(
            {"smiles": [Chem.MolToSmiles(m) for m in mols], "atoms": kw.get("highlightAtomLists")}
        )
        return real(mols, **kw)

    monkeypatch.setattr(Draw, "MolsToGridImage", spy)
    return calls


# ------------------------------------------------------------------------------ every page × kind
@pytest.mark.parametrize("kind", ["molecule", "lattice"])
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_with_every_model_kind(tiny_default, page, kind):
    if kind == "lattice":
        _store_lattice_model()
    at = _open(page, model="lattice" if kind == "lattice" else None)
    assert TITLES[page] in [t.value for t in at.title]
    if kind == "lattice" and page in MOLECULE_PAGES:
        assert any("needs a molecule model" in i.value for i in at.info)
        assert not at.error
    else:
        assert not any("needs a molecule model" in i.value for i in at.info)


# ------------------------------------------------------------------------------ design
def test_design_page_pasted_fragment_shows_task_summary_and_matched_atoms(
    tiny_default, drawn_grids
):
    at = _open("design")
    at.text_input(key="design_fragment").set_value("[*]c1ccccc1").run()
    assert not at.exception and not at.error
    assert any(
        "motif extension" in m.value and "1 attachment point" in m.value for m in at.markdown
    )
    assert any("cannot restrict growth" in w.value for w in at.warning)  # SELFIES model: a notice
    assert at.number_input(key="design_start").value == 0  # SELFIES models keep a start position

    at.number_input(key="design_n").set_value(8)
    at.selectbox(key="design_order").set_value("confidence")
    at.button[0].click().run()  # the form's Generate button
    assert not at.exception and not at.error
    table = at.session_state["design_table"]
    summary = table.attrs["summary"]
    assert summary["requested"] == 8 and summary["matched"] > 0
    line = (
        f"{summary['requested']} requested · {summary['valid']} valid · {summary['matched']} "
        "contain the fragment"
    )
    assert any(line in m.value for m in at.markdown)
    # the notice is said once (the fragment check), not again under the results
    notices = [w.value for w in at.warning] + [c.value for c in at.caption]
    assert sum("cannot restrict growth" in v for v in notices) == 1
    at.text_input(key="design_fragment").set_value("c1ccncc1").run()  # results of the old one
    assert any("cannot restrict growth" in c.value for c in at.caption)

    at.text_input(key="design_fragment").set_value("[*]c1ccccc1").run()
    ok = table[table["status"] == "ok"]
    shown = at.main.dataframe[0].value  # the results table (failed rows sit in their expander)
    assert set(shown["status"]) == {"ok"} and len(shown) == len(ok)
    grid = drawn_grids[-1]
    assert len(grid["smiles"]) == len(ok)
    assert grid["atoms"] == [
        list(a) for a in ok["matched_atoms"]
    ]  # the match itself, not a re-match
    assert all(len(a) == 6 for a in grid["atoms"])  # the benzene ring in every drawn molecule
    assert at.get("download_button")

    at.button(key="design_replay").click().run()  # replay with the same settings
    assert not at.exception
    assert any("positions filled" in c.value for c in at.caption)


def test_design_page_keeps_failed_rows_apart(fragment_block_default, drawn_grids, monkeypatch):
    """Rows that end without the fragment are listed apart and never drawn as successes. The
    grammar keeps even an untrained model's rows valid and on the fragment, so the check reports
    two SMILES in three as misses (by length): about 1 row in 5 still misses after four rounds."""
    from mam_core.workflows import generate

    real_check = generate._check

    def two_in_three_miss(smiles, spec):
        status, hit, canon = real_check(smiles, spec)
        if status == generate.STATUS_OK and len(canon) % 3:
            return generate._MISSING, (), canon
        return status, hit, canon

    monkeypatch.setattr(generate, "_check", two_in_three_miss)
    at = _open("design")
    assert not [
        w for w in at.number_input if w.key == "design_start"
    ]  # fragment blocks: no start position
    at.text_input(key="design_fragment").set_value("[*]c1ccccc1").run()
    at.number_input(key="design_n").set_value(24)
    at.button[0].click().run()
    assert not at.exception and not at.error
    table = at.session_state["design_table"]
    failed = table[table["status"] != "ok"]
    assert len(failed) > 0
    summary = table.attrs["summary"]
    assert any(f"{summary['matched']} contain the fragment" in m.value for m in at.markdown)
    box = [e for e in at.expander if f"{len(failed)} failed rows" in e.label]
    assert len(box) == 1
    failed_df = box[0].dataframe[0].value
    assert len(failed_df) == len(failed) and "ok" not in set(failed_df["status"])
    assert set(failed_df["status"]) <= {"invalid molecule", "fragment not found in the molecule"}
    ok_count = summary["matched"]
    if ok_count == 0:
        assert any("No molecule satisfied" in w.value for w in at.warning)
        assert not drawn_grids  # nothing drawn as if it were a success
    else:
        assert len(drawn_grids[-1]["smiles"]) == ok_count


def test_design_page_shows_how_atypical_each_molecule_is_for_a_calibrated_model(
    tmp_path, monkeypatch, drawn_grids
):
    """With an outlier calibration stored in the model, every designed molecule gets the
    percentile the Likelihood page would give it (the same score and calibration), and the
    caption says what it means; rows that are not molecules get none."""
    from mam_core import MaM, NetworkConfig
    from mam_core.chem.moses import load_moses
    from mam_core.chem.training_data import fragment_block_dataset
    from mam_core.chem.molecules import attach_tokenizer
    from mam_core.workflows.outliers import calibrate, score_table

    train = load_moses("train", limit=400)
    tok, _ = fragment_block_dataset(train[:200], copies=1, seed=0, max_length=64)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    calibrate(model, train[200:], "test calibration", n_fragment=20)
    install_default_molecule_model(model, tok, tmp_path, monkeypatch)
    at = _open("design")
    at.number_input(key="design_n").set_value(12)
    at.button[0].click().run()
    assert not at.exception and not at.error
    table = at.session_state["design_table"]
    valid = table[table["valid"]]
    assert len(valid) > 0 and table.loc[~table["valid"], "percentile"].isna().all()
    expected = score_table(model, valid["SMILES"].tolist())["percentile"].to_numpy()
    assert np.allclose(valid["percentile"].to_numpy(), expected)
    assert len(set(expected)) > 1  # molecules are told apart, not all given one value
    shown = at.main.dataframe[0].value
    assert "percentile" in shown.columns
    assert any("how atypical a molecule is" in c.value for c in at.caption)


def test_design_page_starts_from_the_models_stored_sampling_settings(tmp_path, monkeypatch):
    """A model exported with a temperature / top-p (mam export) opens the Design page with
    them; a model without opens at 1.0 / 1.0."""
    from mam_core import MaM, NetworkConfig
    from mam_core.chem.moses import load_moses
    from mam_core.chem.tokenizers import SelfiesTokenizer
    from mam_core.workflows.generate import SAMPLING_KEY

    tok = SelfiesTokenizer.build(load_moses("train", limit=200), drop_invalid=True)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    model.metadata[SAMPLING_KEY] = {"temperature": 0.7, "top_p": 0.95}
    install_default_molecule_model(model, tok, tmp_path, monkeypatch)
    at = _open("design")
    assert at.slider(key="design_temperature").value == pytest.approx(0.7)
    assert at.slider(key="design_top_p").value == pytest.approx(0.95)


def test_design_page_bad_fragment_and_linker_on_selfies(tiny_default):
    at = _open("design")
    at.text_input(key="design_fragment").set_value("C1CC").run()  # unclosed ring
    assert not at.exception
    assert at.error and "fragment" in at.error[0].value
    at.button[0].click().run()
    assert at.session_state["design_table"] is None  # nothing generated from a bad fragment

    at.text_input(key="design_fragment").set_value("[*]c1ccccc1.[*]N1CCOCC1").run()
    assert not at.exception
    assert at.error and "linker design needs a fragment-block model" in at.error[0].value


def test_design_editor_drawing_replaces_the_text(tiny_default, monkeypatch):
    """What the editor sends on Apply (Ketcher's R1 label here) becomes the fragment text."""
    import app.forms

    sent = {"value": None}
    monkeypatch.setattr(app.forms, "_editor", lambda value, key, height: sent["value"] or value)
    at = _open("design")
    at.text_input(key="design_fragment").set_value("c1ccccc1").run()
    assert (
        at.text_input(key="design_fragment").value == "c1ccccc1"
    )  # the editor's echo changes nothing
    sent["value"] = "[*:1]c1ccccc1 |$_R1;;;;;;$|"
    at.run()
    assert not at.exception
    assert at.text_input(key="design_fragment").value == "[1*]c1ccccc1"
    assert any("motif extension" in m.value for m in at.markdown)


# ------------------------------------------------------------------------------ other pages
def test_ising_page_survives_leaving_and_coming_back():
    at = _open("ising")
    assert "Device" in at.sidebar.caption[0].value
    at.slider(key="ising_n").set_value(3)
    at.number_input(key="ising_steps").set_value(20)
    at.button[0].click().run()  # the form's Train button
    assert not at.exception
    assert at.session_state["ising_run"] is not None
    assert len(at.get("plotly_chart")) >= 3
    at.button(key="ising_compare").click().run()
    assert not at.exception
    assert any("Mean log f" in m.value for m in at.markdown)

    at.switch_page(PAGES["models"]).run()  # Streamlit resets the slider to 4 on the way back
    at.switch_page(PAGES["ising"]).run()
    assert not at.exception
    assert at.slider(key="ising_n").value == 4
    assert any("3×3 lattice" in c.value for c in at.caption)


def test_likelihood_page_names_the_worst_fragment(fragment_block_default):
    at = _open("likelihood")
    at.text_area(key="lik_text").set_value("CCOC(=O)c1ccccc1\nnot-a-molecule\nCC(=O)Nc1ccc(O)cc1")
    at.checkbox(key="lik_arm").uncheck()
    box = at.selectbox(key="lik_score")
    box.select_index([o.split(":")[0] for o in box.options].index("worst_fragment"))
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    worst = at.session_state["lik_outliers"]
    assert worst["atypical_fragment"].tolist()[1] == ""  # unrepresentable: no fragment
    assert all(worst["atypical_fragment"][[0, 2]].str.len() > 0)
    assert worst.loc[1, "percentile"] == 100
    assert "worst_fragment" in at.caption[-1].value or any(
        "worst_fragment" in c.value for c in at.caption)
    # a fragment-block model: the likelihood table also sums each molecule over its fragment
    # orders (four of them by default), and ranks by that
    from mam_core.chem import safe

    table = at.session_state["lik_result"].table
    assert at.number_input(key="lik_spellings").value == 4
    assert table["block_orders"].tolist()[0] == safe.block_orders(
        safe.encode("CCOC(=O)c1ccccc1"), 1).count
    assert table["log_p_molecule"].isna().tolist() == [False, True, False]
    assert table["outlier_rank"].tolist()[::2] == list(
        table["log_p_molecule"].rank(method="first")[::2])


def test_likelihood_page_scores_compares_and_reports_bad_rows(tiny_default):
    at = _open("likelihood")
    assert (
        at.get("file_uploader")[0].proto.max_upload_size_mb == 2
    )  # the widget states the real limit
    at.text_area(key="lik_text").set_value(
        "CCO\nc1ccccc1\nnot-a-molecule\nCC(=O)Oc1ccccc1C(=O)O\nCCN"
    )
    at.checkbox(key="lik_arm").check()
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    result = at.session_state["lik_result"]
    table = result.table
    assert len(table) == 5 and table["log_p_mam"].notna().sum() == 4
    assert "RDKit cannot parse" in table.loc[2, "error"]
    # both timed (the speed ratio itself is measured in bench/marginal_speed.py, not here)
    assert result.seconds_arm is not None
    assert result.n_arm == 4 and result.seconds_mam_arm_rows == result.seconds_mam
    assert result.speedup == pytest.approx(result.seconds_arm / result.seconds_mam)
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
    assert list(page_table.columns) == list(cli_table.columns)
    assert page_table["smiles"].tolist() == table["input"].tolist()
    assert np.allclose(page_table["outlier_score"].to_numpy(),
                       cli_table["outlier_score"].to_numpy(), equal_nan=True)
    assert page_table.loc[2, "percentile"] == 100  # unrepresentable ranks first

    # a SELFIES model has no fragment blocks: the score that needs them is not offered
    assert not any(o.startswith("worst_fragment") for o in at.selectbox(key="lik_score").options)
    # ... and writes a molecule one way: no sum over spellings is offered or added
    assert "lik_spellings" not in [w.key for w in at.number_input]
    assert "log_p_molecule" not in table

    at.text_area(key="lik_text").set_value("   \n")
    at.button[0].click()
    at.run()
    assert at.error and "no molecules given" in at.error[0].value

    at.text_input(key="lik_fragment").set_value("C1CC")
    at.run()
    assert any("fragment" in e.value for e in at.error)


@pytest.fixture()
def captured_fine_tune(monkeypatch):
    """Replaces fine-tuning by a spy that records the energy, the training config and the
    template it was given and returns at once (or, with ``seen["call_through"] = True``, runs
    the real fine-tuning)."""
    import mam_core.workflows.finetune

    real = mam_core.workflows.finetune.fine_tune
    seen = {"call_through": False}

    def spy(model, energy, *args, **kw):
        seen["energy"], seen["template"] = energy, kw.get("template")
        seen["cfg"] = args[0] if args else kw.get("cfg")
        return real(model, energy, *args, **kw) if seen["call_through"] else None

    monkeypatch.setattr(mam_core.workflows.finetune, "fine_tune", spy)
    return seen


def _start_finetune(at: AppTest, steps: int, batch: int | None = None, timeout: float = 120,
                    stop_at_once: bool = False):
    """Set the steps (and batch), press Start, and wait for the background job to end
    (``stop_at_once``: ask it to stop after its first step, and check that it did end)."""
    at.number_input(key="ft_steps").set_value(steps)
    if batch is not None:
        at.number_input(key="ft_batch").set_value(batch)
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error
    job = at.session_state["ft_job"]
    if stop_at_once:
        job.stop()
    job.wait(timeout)
    assert job.error is None
    if stop_at_once:
        assert not job.running
    return job


def test_finetune_page_runs_in_the_background_and_saves(tiny_default):
    from mam_core.workflows.model_store import model_names, sanitize_name

    at = _open("finetune")
    at.text_input(key="ft_fragment").set_value("c1ccccc1")
    job = _start_finetune(at, steps=10, batch=8)
    assert job.step == 10
    assert [r["step"] for r in job.records][-1] == 10 and "reward_mean" in job.records[-1]
    at.run()
    assert any("Finished" in s.value for s in at.success)
    at.button(key="ft_compare").click().run()
    assert not at.exception
    caption = " ".join(c.value for c in at.caption)
    assert "mean QED" in caption and "drug-like (QED ≥ 0.6, SA ≤ 4, unique)" in caption
    at.text_input(key="ft_name").set_value("my tuned/../model")
    at.button(key="ft_save").click().run()
    assert not at.exception
    assert sanitize_name("my tuned/../model") == "my_tuned_.._model"  # no path separators survive
    assert "my_tuned_.._model" in model_names()


@pytest.mark.slow
def test_finetune_page_fixes_a_fragment_as_blocks_with_attachment_points(
    fragment_block_default, captured_fine_tune
):
    """On a fragment-block model the fixed fragment is its blocks (growth only at [*]), as on the
    Design page; the job's template starts with them."""
    from mam_core.workflows.generate import plan_design

    captured_fine_tune["call_through"] = True  # the real job, on the block template
    at = _open("finetune")
    at.text_input(key="ft_fragment").set_value("[*]c1ccc(F)cc1")
    # what is checked is the template the job starts from: stop it after its first step (an
    # untrained model's ring-rich strings make each step slow)
    _start_finetune(at, steps=10, batch=8, stop_at_once=True)
    model = fragment_block_default
    expected = plan_design(model, 1, "[*]c1ccc(F)cc1", 0, seed=0).templates[0]
    assert (expected != model.mask_id).sum() > 5  # the block, then masks
    template = captured_fine_tune["template"]
    assert template is not None and torch.equal(template.cpu(), expected)


def test_finetune_page_rejects_a_bad_smarts(tiny_default):
    at = _open("finetune")
    at.selectbox(key="ft_reward").set_value("substructure")
    at.text_input(key="ft_smarts").set_value("C((")
    at.button[0].click()
    at.run()
    assert at.error and "SMARTS" in at.error[0].value
    assert at.session_state["ft_job"] is None




def test_finetune_page_builds_its_reward_from_a_spec(tiny_default, captured_fine_tune):
    """The widgets write a reward spec, the page shows it as TOML and JSON, and the job's energy
    is what build_reward makes of it; its steps run in bfloat16 where that is faster."""
    from energies import RewardSpec
    from mam_core.workflows.finetune import fine_tune_precision

    at = _open("finetune")
    assert any('type = "window"' in c.value for c in at.code)  # the default: a logP window
    at.selectbox(key="ft_reward").set_value("combined")
    at.slider(key="ft_logp_window").set_value((0.5, 2.5))
    _start_finetune(at, steps=10, timeout=60)
    spec = at.session_state["ft_setup"]["spec"]
    assert [c["kind"] for c in spec["components"]] == ["logp", "qed", "sa"]
    assert spec["components"][0]["transform"] == {"type": "window", "low": 0.5, "high": 2.5,
                                                  "width": 0.5}
    energy = captured_fine_tune["energy"]
    assert energy.params == spec and energy.spec == RewardSpec.from_dict(spec)
    assert captured_fine_tune["cfg"].precision == fine_tune_precision(tiny_default)
    assert any(json.loads(c.value) == spec for c in at.code if c.language == "json")


def test_finetune_page_uses_an_uploaded_spec_and_names_a_wrong_key(tiny_default,
                                                                   captured_fine_tune):
    at = _open("finetune")
    toml = b'temperature = 0.5\n[[components]]\nkind = "qed"\nweight = 2.0\n'
    at.file_uploader(key="ft_spec_upload").set_value(("mine.toml", toml, "application/toml"))
    _start_finetune(at, steps=10, timeout=60)
    spec = at.session_state["ft_setup"]["spec"]
    assert spec["temperature"] == 0.5 and spec["components"][0]["weight"] == 2.0
    assert captured_fine_tune["energy"].params == spec

    at = _open("finetune")
    wrong = b'[[components]]\nkind = "qed"\nwieght = 2.0\n'
    at.file_uploader(key="ft_spec_upload").set_value(("wrong.toml", wrong, "application/toml"))
    at.button[0].click()
    at.run()
    assert at.error and "unknown key 'wieght'" in at.error[0].value
    assert "wrong.toml" in at.error[0].value and at.session_state["ft_job"] is None


def test_models_page_lists_caches_and_deletes(tiny_default, monkeypatch):
    import mam_core.workflows.model_store as store

    reads = []
    real = store.list_models
    monkeypatch.setattr(store, "list_models", lambda: reads.append(1) or real())
    store.save_model(tiny_default, "second")
    at = _open("models")
    assert at.get("file_uploader")[0].proto.max_upload_size_mb == 100
    assert list(at.dataframe[0].value["name"]) == ["default", "second"]
    n_reads = len(reads)
    at.run()  # a rerun with no file changed reads no checkpoint
    assert len(reads) == n_reads
    at.button(key="del_second").click().run()
    assert not at.exception
    assert store.model_names() == ["default"]
    assert list(at.dataframe[0].value["name"]) == ["default"]  # the deletion shows at once


def test_models_page_draws_a_models_training_history(tiny_default):
    """Held-out NLL measured every 1,000 steps once drew as nothing (a line through gaps)."""
    import copy
    import json

    import mam_core.workflows.model_store as store

    trained = copy.deepcopy(tiny_default)
    trained.metadata["training"] = [{
        "stage": "arm", "config": {"steps": 2000, "batch_size": 128, "lr": 3e-4},
        "steps_done": 2000, "n_train": 100,
        "history": [{"step": s, "loss": 40.0, "nll_nats": 40.0,
                     **({"heldout_nll": 41.0 - s / 1000, "quality": 0.5} if s % 1000 == 0
                        else {})} for s in range(50, 2001, 50)]}]
    store.save_model(trained, "trained")
    at = _open("models")
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 1  # the untrained default has no history to draw
    fig = json.loads(charts[0].proto.spec)
    held = next(t for t in fig["data"] if t["name"] == "held-out, any order")
    assert held["x"] == [1000, 2000, None] and "markers" in held["mode"]
    stages = at.dataframe[1].value  # after the table of models
    assert stages["kind"].tolist() == ["arm"] and stages["last held-out NLL"].tolist() == [39.0]
