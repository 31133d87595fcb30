"""Reward specs: transform values, validation messages, TOML / JSON files, built rewards against
RDKit by hand on real molecules, negative weights, and the CLI's --reward-spec."""

from __future__ import annotations

import json
import math
import os
import sys

import pytest
import torch
from rdkit import Chem, RDConfig
from rdkit.Chem import QED, Crippen, Descriptors

from energies import RewardSpec, build_reward, load_reward_spec
from energies.spec import parse_reward_spec
from energies.transforms import Transform
from mam_core.chem.tokenizers import SelfiesTokenizer

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
CAFFEINE = "Cn1cnc2c1c(=O)n(C)c(=O)n2C"
ETHANOL = "CCO"
MOLECULES = [ASPIRIN, CAFFEINE, ETHANOL]

#: The README's example, as a user would write it.
EXAMPLE_TOML = """
aggregate = "sum"
temperature = 0.1

[[components]]
kind = "logp"
weight = 1.0
transform = { type = "window", low = 1.0, high = 3.0, width = 0.5 }

[[components]]
kind = "qed"
weight = 1

[[components]]
kind = "sa"
weight = 0.5
transform = { type = "reverse_sigmoid", low = 2.0, high = 6.0, k = 0.5 }

[[components]]
kind = "smarts"
smarts = "C(=O)N"
weight = 0.5
"""


def _sa(smiles: str) -> float:
    """RDKit's Contrib SA score, loaded here independently of mam_core."""
    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer

    return sascorer.calculateScore(Chem.MolFromSmiles(smiles))


def _sigmoid(x, low, high, k):  # REINVENT4's formula
    return 1 / (1 + 10 ** (10 * k * (x - (low + high) / 2) / (low - high)))


def _window(x, low, high, width):
    return 0.5 ** ((max(0.0, low - x, x - high) / width) ** 2)


# --- transforms ---------------------------------------------------------------------------------


def test_window_is_one_inside_and_halves_one_width_outside():
    w = Transform("window", low=1.0, high=3.0, width=0.5)
    assert [w(x) for x in (1.0, 2.0, 3.0)] == [1.0, 1.0, 1.0]
    assert [w(3.5), w(0.5)] == [0.5, 0.5]  # one width outside either edge
    assert [w(4.0), w(0.0)] == [0.0625, 0.0625]  # two widths: 0.5 ** 4
    assert 0.5 < w(3.25) < 1.0 and w(10.0) < 1e-50
    assert Transform("window", low=2.0, high=2.0, width=1.0)(2.0) == 1.0  # a point is a window


def test_sigmoid_is_monotone_with_midpoint_exactly_half():
    up = Transform("sigmoid", low=2.0, high=6.0, k=0.5)
    down = Transform("reverse_sigmoid", low=2.0, high=6.0, k=0.5)
    xs = [x / 2 for x in range(-4, 21)]
    ups, downs = [up(x) for x in xs], [down(x) for x in xs]
    assert all(a < b for a, b in zip(ups, ups[1:]))
    assert all(a > b for a, b in zip(downs, downs[1:]))
    assert up(4.0) == 0.5 and down(4.0) == 0.5
    assert up(2.0) == pytest.approx(1 / (1 + 10**2.5), rel=1e-12)  # REINVENT4's value at low
    assert up(1e6) == 1.0 and 0.0 <= up(-1e6) < 1e-299  # no overflow far out
    assert Transform("sigmoid", low=2.0, high=6.0).k == 0.5  # REINVENT4's usual steepness


def test_step_and_identity():
    step = Transform("step", low=1.0, high=2.0)
    assert [step(0.99), step(1.0), step(2.0), step(2.01)] == [0.0, 1.0, 1.0, 0.0]
    assert Transform("step", high=4.0)(-100.0) == 1.0  # an open side
    assert Transform()(-3.5) == -3.5
    assert math.isnan(Transform("window", low=0, high=1, width=1)(math.nan))


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, named",
    [
        ({"components": [{"kind": "qed"}], "temprature": 1.0}, "'temprature'"),
        ({"components": [{"kind": "qed", "wieght": 1.0}]}, "'wieght'"),
        ({"components": [{"kind": "logp", "transform": {"type": "sigmoid", "low": 1,
                                                          "hihg": 3}}]}, "'hihg'"),
    ],
)
def test_unknown_keys_are_refused_by_name(spec, named):
    with pytest.raises(ValueError, match="unknown key") as err:
        RewardSpec.from_dict(spec)
    assert named in str(err.value) and "allowed:" in str(err.value)


def test_the_allowed_keys_are_listed():
    with pytest.raises(ValueError) as err:
        RewardSpec.from_dict({"components": [{"kind": "qed", "colour": "red"}]})
    assert "allowed: kind, weight, transform, smarts, name" in str(err.value)


@pytest.mark.parametrize(
    "component, message",
    [
        ({"kind": "logp", "transform": {"type": "window", "low": 3, "high": 1, "width": 1}},
         "window is empty: low=3 > high=1"),
        ({"kind": "mw", "transform": {"type": "window", "low": 200, "high": 500, "width": 0}},
         "width > 0"),
        ({"kind": "mw", "transform": {"type": "window", "low": 200, "high": 500, "width": -5}},
         "width > 0"),
        ({"kind": "mw", "transform": {"type": "window", "low": 200, "high": 500}},
         "needs 'width'"),
        ({"kind": "logp", "transform": {"type": "sigmoid", "low": 2, "high": 2}}, "low < high"),
        ({"kind": "logp", "transform": {"type": "sigmoid", "low": 1, "high": 2, "k": 0}}, "k > 0"),
        ({"kind": "logp", "transform": {"type": "step", "low": 3, "high": 1}}, "step window is"),
        ({"kind": "logp", "transform": {"type": "bump"}}, "unknown transform type 'bump'"),
        ({"kind": "logp", "transform": "window"}, "must be a table"),
        ({"kind": "tpsa"}, "unknown kind 'tpsa'; allowed: logp, qed, sa, mw"),
        ({"weight": 1.0}, "'kind' is missing"),
        ({"kind": "qed", "weight": "2"}, "'weight' must be a number"),
        ({"kind": "qed", "weight": True}, "'weight' must be a number"),
        ({"kind": "logp", "transform": {"type": "window", "low": "1", "high": 3, "width": 1}},
         "'low' must be a number"),
        ({"kind": "smarts"}, "needs a non-empty SMARTS"),
        ({"kind": "smarts", "smarts": "C(("}, "cannot parse the SMARTS"),
        ({"kind": "qed", "smarts": "C"}, "belongs to kind \"smarts\" only"),
        ({"kind": "logp"}, "can score without bound"),
    ],
)
def test_bad_components_raise_clear_errors(component, message):
    with pytest.raises(ValueError, match="component 1") as err:
        RewardSpec.from_dict({"components": [component]})
    assert message in str(err.value)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "'components' is missing"),
        ({"components": []}, "at least one component"),
        ({"components": {"kind": "qed"}}, "must be a list"),
        ({"components": [{"kind": "qed"}], "temperature": 0}, "'temperature' must be > 0"),
        ({"components": [{"kind": "qed"}], "temperature": "hot"}, "'temperature' must be a num"),
        ({"components": [{"kind": "qed"}], "floor": math.nan}, "'floor' must be finite"),
        ({"components": [{"kind": "qed"}], "aggregate": "max"}, "unknown aggregate 'max'"),
        ({"components": [{"kind": "qed", "weight": 0}]}, "every weight is 0"),
        ({"components": [{"kind": "qed", "weight": -1}], "aggregate": "product"}, "weights >= 0"),
        ({"components": [{"kind": "logp"}], "aggregate": "product", "floor": -1},
         "scores >= 0"),
    ],
)
def test_bad_specs_raise_clear_errors(spec, message):
    with pytest.raises(ValueError) as err:
        RewardSpec.from_dict(spec)
    assert message in str(err.value)


def test_an_unbounded_component_is_fine_with_an_explicit_floor():
    spec = RewardSpec.from_dict({"components": [{"kind": "logp"}], "floor": -20.0})
    assert build_reward(spec).score_smiles([ETHANOL, "xx"])[1] == -20.0


# --- files and plain data ------------------------------------------------------------------------


def test_toml_and_json_files_round_trip(tmp_path):
    written = tmp_path / "written.toml"
    written.write_text(EXAMPLE_TOML, encoding="utf-8")
    spec = load_reward_spec(written)
    assert [c.kind for c in spec.components] == ["logp", "qed", "sa", "smarts"]
    assert spec.components[1].weight == 1.0 and spec.components[1].transform == Transform()

    (tmp_path / "again.toml").write_text(spec.to_toml(), encoding="utf-8")
    (tmp_path / "again.json").write_text(spec.to_json(), encoding="utf-8")
    assert load_reward_spec(tmp_path / "again.toml") == spec
    assert load_reward_spec(str(tmp_path / "again.json")) == spec
    assert RewardSpec.from_dict(spec.to_dict()) == spec
    assert json.loads(spec.to_json()) == spec.to_dict()
    assert load_reward_spec(spec.to_dict()) == spec and load_reward_spec(spec) is spec


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('temperature = 1.0\n[[components]]\nkind = "qed"\nwieght = 2\n')
    with pytest.raises(ValueError, match=r"bad\.toml: component 1: unknown key 'wieght'"):
        load_reward_spec(bad)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_reward_spec(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="not valid TOML"):
        parse_reward_spec("components = [", "toml")
    with pytest.raises(ValueError, match="not found"):
        load_reward_spec(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        load_reward_spec(tmp_path / "spec.yaml")


# --- built rewards -------------------------------------------------------------------------------


def test_built_reward_matches_rdkit_by_hand_on_three_molecules():
    reward = build_reward(parse_reward_spec(EXAMPLE_TOML, "toml"))
    amide = Chem.MolFromSmarts("C(=O)N")
    for smiles in MOLECULES:
        mol = Chem.MolFromSmiles(smiles)
        scores = [
            (1.0, _window(Crippen.MolLogP(mol), 1.0, 3.0, 0.5)),
            (1.0, QED.qed(mol)),
            (0.5, 1 - _sigmoid(_sa(smiles), 2.0, 6.0, 0.5)),  # the reverse sigmoid
            (0.5, float(mol.HasSubstructMatch(amide))),
        ]
        expected = sum(w * s for w, s in scores) / sum(w for w, _ in scores) / 0.1
        assert reward.score_smiles([smiles])[0] == pytest.approx(expected, rel=1e-9), smiles
    # caffeine has the amide, aspirin and ethanol do not; the three get three different rewards
    assert len(set(reward.score_smiles(MOLECULES).round(9))) == 3


def test_product_is_the_weighted_geometric_mean():
    spec = {"aggregate": "product", "temperature": 0.5, "components": [
        {"kind": "qed", "weight": 2.0},
        {"kind": "mw", "weight": 1.0,
         "transform": {"type": "sigmoid", "low": 50.0, "high": 250.0, "k": 0.25}},
    ]}
    reward = build_reward(spec)
    for smiles in MOLECULES:
        mol = Chem.MolFromSmiles(smiles)
        q, m = QED.qed(mol), _sigmoid(Descriptors.MolWt(mol), 50.0, 250.0, 0.25)
        expected = (q ** (2 / 3)) * (m ** (1 / 3)) / 0.5
        assert reward.score_smiles([smiles])[0] == pytest.approx(expected, rel=1e-9)
    assert reward.floor == 0.0


def test_a_negative_weight_penalises_without_flattening_valid_molecules():
    spec = {"temperature": 1.0, "components": [{"kind": "qed", "weight": -1.0}]}
    reward = build_reward(spec)
    aspirin, ethanol = reward.score_smiles([ASPIRIN, ETHANOL])
    assert aspirin != ethanol
    assert aspirin == pytest.approx(-QED.qed(Chem.MolFromSmiles(ASPIRIN)), rel=1e-9)
    assert reward.floor == -1.0 and reward.ceiling() == 0.0  # QED 1 and QED 0
    assert reward.score_smiles(["not a molecule"])[0] == reward.floor <= min(aspirin, ethanol)

    mixed = build_reward({"components": [
        {"kind": "qed", "weight": 1.0},
        {"kind": "smarts", "smarts": "c1ccccc1", "weight": -1.0},  # penalise benzene rings
    ]})
    values = mixed.score_smiles([ASPIRIN, CAFFEINE, ETHANOL])
    qeds = [QED.qed(Chem.MolFromSmiles(s)) for s in MOLECULES]
    assert list(values) == pytest.approx([(qeds[0] - 1) / 2, qeds[1] / 2, qeds[2] / 2])
    assert mixed.floor == -0.5 and len(set(values)) == 3


def test_built_reward_is_a_molecular_energy_on_token_ids():
    tok = SelfiesTokenizer.build(MOLECULES, max_length=24)
    reward = build_reward({"temperature": 0.1, "components": [{"kind": "qed"}]}, tokenizer=tok)
    x = tok.encode_batch([ASPIRIN, CAFFEINE, ASPIRIN])
    out = reward(x)
    assert out.dtype == torch.float32 and out.shape == (3,)
    assert torch.allclose(out, torch.tensor(reward.score_smiles([ASPIRIN, CAFFEINE, ASPIRIN]),
                                            dtype=torch.float32))
    assert reward.cache_info().hits == 1
    assert reward(torch.full((1, tok.D), tok.pad_id)).item() == reward.floor == 0.0
    assert reward.params == load_reward_spec(reward.params).to_dict()  # what a run records
    assert reward.name == "reward_spec" and "QED" in reward.description


# --- the command line ----------------------------------------------------------------------------


def test_cli_fine_tunes_with_a_reward_spec_file(tmp_path, capsys):
    from mam_core import MaM, NetworkConfig
    from mam_core.chem.molecules import attach_tokenizer
    from mam_core.cli import build_parser, main
    from mam_core.core import checkpoint as ckpt

    spec_file = tmp_path / "reward.toml"
    spec_file.write_text(EXAMPLE_TOML, encoding="utf-8")
    args = build_parser().parse_args(["train-eb", "--reward-spec", str(spec_file), "--out", "o"])
    assert args.reward_spec == str(spec_file) and args.energy is None

    tok = SelfiesTokenizer.build(MOLECULES + ["c1ccccc1", "CCN"], max_length=24)
    torch.manual_seed(0)
    prior = MaM(NetworkConfig(D=tok.D, K=tok.K, arch="mlp", hidden=16, n_layers=1), tok.vocab)
    attach_tokenizer(prior, tok)
    ckpt.save(prior, tmp_path / "prior.pt")
    out = tmp_path / "ft"
    rc = main(["train-eb", "--reward-spec", str(spec_file), "--init", str(tmp_path / "prior.pt"),
               "--steps", "2", "--batch-size", "4", "--out", str(out), "--no-progress",
               "--device", "cpu", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    record = ckpt.load(out / "checkpoint.pt").metadata["training"][-1]
    assert record["energy"] == "reward_spec"
    assert record["energy_params"] == load_reward_spec(spec_file).to_dict()

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"components": [{"kind": "qed", "wieght": 1}]}))
    assert main(["train-eb", "--reward-spec", str(bad), "--init", str(tmp_path / "prior.pt"),
                 "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'wieght'" in err and "Traceback" not in err
    assert main(["train-eb", "--reward-spec", str(spec_file), "--energy", "qed", "--out",
                 str(tmp_path / "y"), "--no-progress"]) == 2
    assert "drop --energy" in capsys.readouterr().err
