"""The `mam` command line end to end on tiny settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mam_core.cli import build_parser, main

COMMANDS = ["train-arm", "distill", "train-eb", "sample", "score", "eval"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--device" in out


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "mam_core.cli", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "train-eb" in out.stdout


def test_eb_train_sample_score_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train-eb", "--energy", "ising", "--ising-size", "3", "--sigma", "0.3", "--out",
            str(out),
            "--batch-size", "32", "--hidden", "32", "--no-progress", "--device", "cpu"]
    assert main(args + ["--steps", "20"]) == 0
    assert "finished at step 20" in capsys.readouterr().out
    model = str(out / "checkpoint.pt")

    assert main(["sample", "--model", model, "-n", "4", "--template", "1 ? ? ? 0 ? ? ? ?",
                 "--order", "r2l"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 4 and all(r.split()[0] == "1" and r.split()[4] == "0" for r in rows)

    inp = tmp_path / "in.txt"
    inp.write_text("1 0 1 0 1 0 1 0 1\n? ? ? ? ? ? ? ? ?\n1 1 ? ? ? ? ? ? ?\n")
    assert main(["score", "--model", model, "--input", str(inp), "--arm", "--orders", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0] == "row,observed,log_marginal_mam,log_likelihood_arm" and len(lines) == 4
    assert lines[2].split(",")[2] == "0.000000"  # empty set
    assert "speed-up" in captured.err

    assert main(args + ["--steps", "30", "--resume"]) == 0
    assert "finished at step 30" in capsys.readouterr().out


def test_arm_then_distill_on_a_token_file(tmp_path, capsys):
    import torch

    from mam_core import load

    data = tmp_path / "data.txt"
    data.write_text("\n".join(" ".join(str((i * j) % 3) for j in range(5)) for i in range(50)))
    assert main(["train-arm", "--data", str(data), "--out", str(tmp_path / "s1"), "--steps", "10",
                 "--batch-size", "16", "--d-model", "16", "--n-layers", "1", "--no-progress"]) == 0
    assert main(["distill", "--data", str(data), "--init", str(tmp_path / "s1" / "checkpoint.pt"),
                 "--out", str(tmp_path / "s2"), "--steps", "10", "--batch-size", "16",
                 "--no-progress"]) == 0
    assert "stage 2" in capsys.readouterr().out
    # stage 1 goes on; the distillation continues from the earlier one instead of starting over
    assert main(["train-arm", "--data", str(data), "--out", str(tmp_path / "s1b"), "--steps",
                 "10", "--batch-size", "16", "--d-model", "16", "--n-layers", "1", "--seed", "3",
                 "--no-progress"]) == 0
    earlier = load(tmp_path / "s2" / "checkpoint.pt")
    assert main(["distill", "--data", str(data), "--init", str(tmp_path / "s1b" / "checkpoint.pt"),
                 "--marginal-from", str(tmp_path / "s2" / "checkpoint.pt"), "--out",
                 str(tmp_path / "s2b"), "--steps", "1", "--lr", "1e-9", "--no-progress"]) == 0
    later, arm = load(tmp_path / "s2b" / "checkpoint.pt"), load(tmp_path / "s1b" / "checkpoint.pt")
    for a, b in zip(later.marginal_parameters(), earlier.marginal_parameters()):
        assert torch.allclose(a, b, atol=1e-6)  # θ carried over (one step at lr 1e-9)
    for a, b in zip(later.conditional_parameters(), arm.conditional_parameters()):
        assert torch.equal(a, b)  # φ is the new stage 1's
    assert main(["distill", "--data", str(data), "--init", str(tmp_path / "s1b" / "checkpoint.pt"),
                 "--marginal-from", str(data), "--out", str(tmp_path / "s2c")]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["score", "--model", "nope.pt", "--input", "x"], "not found"),
        (["train-arm", "--data", "missing.txt", "--out", "OUT"], "data file not found"),
        (["train-eb", "--energy", "ising", "--out", "OUT"], "--ising-size"),
        (["train-eb", "--energy", "banana", "--out", "OUT"], "unknown energy"),
        (["sample", "--model", "M", "--order", "sideways"], "not found"),
    ],
)
def test_bad_input_gives_one_line_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_score_rejects_bad_rows(tmp_path, capsys):
    assert main(["train-eb", "--ising-size", "3", "--out", str(tmp_path / "r"), "--steps", "2",
                 "--batch-size", "8", "--hidden", "8", "--no-progress"]) == 0
    model = str(tmp_path / "r" / "checkpoint.pt")
    for text, message in [("1 0 7 0 1 0 1 0 1", "out of range"), ("1 0 1", "D=9"),
                          ("1 0 x 0 1 0 1 0 1", "not an integer")]:
        (tmp_path / "in.txt").write_text(text + "\n")
        assert main(["score", "--model", model, "--input", str(tmp_path / "in.txt")]) == 2
        assert message in capsys.readouterr().err


def test_score_reads_smiles_with_the_one_reader_one_row_per_molecule_line(tmp_path, capsys):
    import io

    import pandas as pd

    from mam_core import MaM, NetworkConfig, save
    from mam_core.chem.molecules import attach_tokenizer
    from mam_core.chem.tokenizers import SelfiesTokenizer

    tok = SelfiesTokenizer.build(["CCO", "c1ccccc1", "CC(=O)O", "CCN"], max_length=12)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, arch="mlp", hidden=16, n_layers=1), tok.vocab)
    attach_tokenizer(model, tok)
    save(model, tmp_path / "m.pt")
    cases = {  # file -> (content, the SMILES column of the output)
        "in.smi": ("SMILES\nCCO ethanol\n# a comment\n\nc1ccccc1\tbenzene\nxx\n",
                   ["CCO", "", "c1ccccc1", "xx"]),
        "in.csv": ('name,smiles\nethanol,CCO\n"a, quoted name",c1ccccc1\nnothing,\n',
                   ["CCO", "c1ccccc1", ""]),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_text(content)
        rc = main(["score", "--model", str(tmp_path / "m.pt"), "--input", str(tmp_path / name),
                   "--score", "raw"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        table = pd.read_csv(io.StringIO(out.out), keep_default_na=False)
        assert table["smiles"].tolist() == expected, name  # one row per molecule line, in order
        errors = table["error"].tolist()
        assert [e == "empty line" for e in errors] == [s == "" for s in expected], errors
        assert f"scored {sum(1 for e in errors if not e)} of {len(expected)} lines" in out.err
    (tmp_path / "only_comments.smi").write_text("# nothing here\n\n")
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--input",
                 str(tmp_path / "only_comments.smi"), "--score", "raw"]) == 2
    assert "no molecules given" in capsys.readouterr().err


def test_molecule_models_train_sample_and_score_smiles(tmp_path, capsys):
    from rdkit import Chem

    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    assert main(["train-arm", "--data", "moses", "--limit", "60", "--out", str(s1), "--steps", "3",
                 "--batch-size", "8",
                 "--d-model", "16", "--n-layers", "1", "--no-progress"]) == 0
    assert main(["distill", "--data", "moses:test", "--limit", "40", "--init",
                 str(s1 / "checkpoint.pt"), "--out", str(s2),
                 "--steps", "3", "--batch-size", "8", "--no-progress"]) == 0
    capsys.readouterr()
    model = str(s2 / "checkpoint.pt")
    assert main(["sample", "--model", model, "-n", "5", "--fragment", "CCO", "--seed", "1"]) == 0
    smiles = capsys.readouterr().out.strip().splitlines()
    assert len(smiles) == 5 and all(Chem.MolFromSmiles(s) is not None
                                    for s in smiles)  # SELFIES: always valid

    inp = tmp_path / "mols.smi"
    inp.write_text("CCO\nc1ccccc1\nnot_a_smiles\n")
    assert main(["score", "--model", model, "--input", str(inp), "--arm"]) == 0
    out = capsys.readouterr()
    import io

    import pandas as pd

    table = pd.read_csv(io.StringIO(out.out), keep_default_na=False, na_values=[""])
    assert list(table.columns) == ["smiles", "log_marginal_mam", "log_likelihood_arm",
                                   "outlier_score", "percentile", "error"]
    assert table["smiles"].tolist() == ["CCO", "c1ccccc1", "not_a_smiles"]  # every line, in order
    assert table["error"].fillna("").tolist()[:2] == ["",
                                                      ""] and "cannot parse" in table["error"][2]
    # out of domain ranks first
    assert table["outlier_score"][2] == float("inf") and table["percentile"][2] == 100.0
    assert table["log_likelihood_arm"][:2].notna().all() and "1 out of domain" in out.err


def test_sample_on_a_fragment_block_model_uses_the_syntax_check_by_default(tmp_path, capsys):
    """`mam sample` draws left to right under the syntax constraint (order auto); with
    --no-grammar an untrained model's strings almost never parse."""
    import torch

    from mam_core import MaM, NetworkConfig
    from mam_core.chem.molecules import attach_tokenizer
    from mam_core.chem.moses import load_moses
    from mam_core.chem.training_data import fragment_block_dataset
    from mam_core.core.checkpoint import save

    tok, _ = fragment_block_dataset(load_moses("train", limit=200), copies=1, seed=0, max_length=64)
    torch.manual_seed(0)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    path = save(model, tmp_path / "m.pt")

    def valid_count(*extra):
        assert main(["sample", "--model", str(path), "-n", "16", "--seed", "0", *extra]) == 0
        out, err = capsys.readouterr()
        return int(err.split(" requested, ")[1].split(" valid")[0])

    assert valid_count() > valid_count("--no-grammar")
    assert main(["sample", "--model", str(path), "-n", "2", "--order", "sideways"]) == 2
    assert "auto" in capsys.readouterr().err


def test_export_stores_calibration_and_sampling_settings_in_half_precision(tmp_path, capsys):
    """A run's checkpoint becomes a model file for use: half the size, the outlier calibration
    inside (mam score then needs no training molecules), and the sampling settings that
    'mam sample' and the Design page start from."""
    from mam_core import MaM, NetworkConfig, load, save
    from mam_core.chem.moses import load_moses
    from mam_core.chem.molecules import attach_tokenizer
    from mam_core.chem.tokenizers import SelfiesTokenizer
    from mam_core.workflows.generate import recommended_constraint, recommended_sampling
    from mam_core.workflows.outliers import calibration_of

    tok = SelfiesTokenizer.build(load_moses("train", limit=300), max_length=40, drop_long=True)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, arch="mlp", hidden=32, n_layers=1), tok.vocab)
    attach_tokenizer(model, tok)
    save(model, tmp_path / "run.pt")
    assert recommended_sampling(model) == {"temperature": 1.0, "top_p": 1.0}
    rc = main(["export", "--model", str(tmp_path / "run.pt"), "--out", str(tmp_path / "m.pt"),
               "--half", "--calibrate", "300", "--temperature", "0.7", "--top-p", "0.95",
               "--constraint", "syntax"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "outlier calibration" in out.out and "half precision" in out.out
    assert (tmp_path / "m.pt").stat().st_size < 0.7 * (tmp_path / "run.pt").stat().st_size
    shipped = load(tmp_path / "m.pt")
    assert recommended_sampling(shipped) == {"temperature": 0.7, "top_p": 0.95}
    assert recommended_constraint(shipped) == "syntax" and recommended_constraint(model) == "full"
    assert calibration_of(shipped) is not None and calibration_of(shipped).n_train > 200
    (tmp_path / "in.smi").write_text("CCO\nc1ccccc1\n")
    assert main(["score", "--model", str(tmp_path / "m.pt"), "--input",
                 str(tmp_path / "in.smi")]) == 0
    assert "no stored calibration" not in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path / "run.pt"), "--out", str(tmp_path / "x.pt"),
                 "--calibrate", "0", "--top-p", "1.5"]) == 2
    assert "--top-p must be in (0, 1]" in capsys.readouterr().err


def test_a_run_report_shows_a_small_learning_rate_rather_than_zero(capsys):
    """The end of a cosine schedule (lr 4.9e-5) once printed as "lr": 0.0."""
    from types import SimpleNamespace

    from mam_core.cli.train import _report

    result = SimpleNamespace(history=[{"step": 12500, "loss": 45.86561, "lr": 4.9123e-05}],
                             stopped_early=True, step=12540, seconds=2680.31, checkpoint=None)
    _report(result, "stage 1 (AO-ARM)")
    line = capsys.readouterr().out
    assert "stopped early at step 12540" in line
    assert '"lr": 4.912e-05' in line and '"loss": 45.87' in line
