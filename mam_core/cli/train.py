"""``mam train-arm``, ``mam distill`` and ``mam train-eb``: the training commands (also under
``torchrun``)."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from pathlib import Path

import torch

from ..chem.molecules import (
    attach_tokenizer,
    default_tokenizer,
    encode_source,
    is_smiles_source,
    tokenizer_of,
)
from ..chem.fragments import FragmentError
from ..core import checkpoint as ckpt
from ..core.config import PRESETS, NetworkConfig, TrainConfig, get_preset
from ..core.data import DataError, load_token_file
from ..core.model import MaM, resolve_device
from ..core.vocab import Vocabulary
from ..training import CHECKPOINT_NAME, distill, train_arm, train_eb
from ..training import distributed as dist
from ..training.loop import shown_metrics
from ..workflows.finetune import (METHODS, energy_run_info, fine_tune, fine_tune_method,
                                  fine_tune_precision, fine_tune_template)
from .common import CLIError, add_common, load_token_text

__all__ = ["add_parsers", "run_train_arm", "run_distill", "run_train_eb", "prepared_data"]

#: Commands that train (and may run under torchrun).
TRAINING_COMMANDS = ("train-arm", "distill", "train-eb")


def _add_train(p: argparse.ArgumentParser, default_preset: str) -> None:
    add_common(p)
    p.add_argument("--out", required=True, help="output folder (checkpoint.pt is written there)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt if it exists")
    p.add_argument("--preset", default=default_preset, choices=sorted(PRESETS),
                   help=f"size preset (default {default_preset})")
    p.add_argument("--steps", type=int, help="optimizer steps (preset default otherwise)")
    p.add_argument("--batch-size", type=int, help="examples / chains per step")
    p.add_argument("--lr", type=float, help="Adam learning rate")
    p.add_argument("--warmup", type=int,
                   help="linear learning-rate warm-up steps before the cosine decay")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="forward pass and loss in float32 (default; fine-tuning a molecule "
                        "sampler: bfloat16 where it is faster, as the app) or under bfloat16 "
                        "autocast (weights and optimizer stay float32)")
    p.add_argument("--attention", choices=["auto", "fused", "plain"],
                   help="attention of the training steps: auto (default) computes it as plain "
                        "matrix products under bf16 on CPU, where PyTorch's kernels are slower, "
                        "and with PyTorch's fused kernels elsewhere")
    p.add_argument("--grad-clip", type=float,
                   help="global gradient-norm clip (0 disables; default 1)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, default=50, help="steps between history records")
    p.add_argument("--max-bad-steps", type=int, default=10,
                   help="consecutive non-finite steps before stopping")
    p.add_argument("--stop-file", help="stop cleanly (saving a checkpoint) once this file exists")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_network(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", choices=["transformer", "mlp"],
                   help="network family (preset default otherwise)")
    p.add_argument("--d-model", type=int, help="transformer width")
    p.add_argument("--n-layers", type=int, help="number of blocks")
    p.add_argument("--n-heads", type=int, help="attention heads")
    p.add_argument("--hidden", type=int, help="residual-MLP width")
    p.add_argument("--shared-trunk", action="store_true",
                   help="one trunk for both heads (default: separate)")


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="molecules: moses[:train|test] or a .smi/.csv(.gz) SMILES file; "
        "tokens: .pt/.npy/.txt file or ising:N[:SIGMA[:BIAS]]",
    )
    p.add_argument("--n-samples", type=int, default=20000,
                   help="sample count for synthetic data specs")
    p.add_argument("--tokenizer", default="selfies", choices=["selfies", "smiles"],
                   help="molecule tokenizer (new models)")
    p.add_argument("--max-length", type=int, help="D for molecules (default: longest molecule)")
    p.add_argument("--limit", type=int, help="use only the first N molecules")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for tokenising")


def _train_config(args, preset: str) -> TrainConfig:
    d = dict(get_preset(preset).train)
    for key in ("steps", "batch_size", "lr", "warmup", "grad_clip", "precision",
                "attention"):
        v = getattr(args, key, None)
        if v is not None:
            d[key] = v
    d.update(
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        max_bad_steps=args.max_bad_steps,
        device=args.device,
    )
    for key in ("sc_weight", "gibbs_k", "data_fraction", "l2r_fraction", "sc_steps"):
        v = getattr(args, key, None)
        if v is not None:
            d[key] = v
    return TrainConfig(**d)


def _network_config(args, D: int, K: int) -> NetworkConfig:
    d = dict(get_preset(args.preset).network)
    for key in ("arch", "d_model", "n_layers", "n_heads", "hidden"):
        v = getattr(args, key, None)
        if v is not None:
            d[key] = v
    if getattr(args, "shared_trunk", False):
        d["shared_trunk"] = True
    return NetworkConfig(D=D, K=K, **d)


def _train_kwargs(args) -> dict:
    return dict(
        out_dir=args.out,
        resume=args.resume,
        progress=not args.no_progress,
        stop_file=args.stop_file,
    )


def _load_data(args, tokenizer=None):
    """``(x, vocab, tokenizer_or_None)`` from --data; molecules use (or build) a tokenizer.

    A ``.pt`` file written by ``mam prepare-data`` carries its tokenizer and is used as it is.
    """
    prepared = prepared_data(args.data)
    if prepared is not None:
        x, tok = prepared
        if args.limit:
            x = x[: args.limit]
        return x, tok.vocab, tok
    if is_smiles_source(args.data):
        x, tok = encode_source(
            args.data, tokenizer, args.tokenizer, args.max_length, args.limit, args.jobs,
            not args.no_progress
        )
        return x, tok.vocab, tok
    if args.data.startswith("ising:"):
        from ..workflows.ising_demo import ising_samples

        x, vocab = ising_samples(args.data, args.n_samples, args.seed)
    else:
        x, vocab = load_token_file(args.data)
    vocab = vocab or Vocabulary.integers(int(x.max()) + 1 if x.numel() else 2)
    return x, vocab, None


def prepared_data(source: str):
    """``(ids, tokenizer)`` from a ``mam prepare-data`` file, or ``None`` for any other source."""
    if not source.lower().endswith(".pt") or not Path(source).is_file():
        return None
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - reported as a data error below
        raise DataError(f"{source}: could not be read: {str(err)[:200]}") from None
    if not isinstance(obj, dict) or "tokenizer" not in obj:
        return None
    from ..chem.tokenizers import tokenizer_from_dict

    tok = tokenizer_from_dict(obj["tokenizer"])
    x = torch.as_tensor(obj["x"]).long()
    out_of_range = x.numel() and (int(x.min()) < 0 or int(x.max()) >= tok.K)
    if x.dim() != 2 or x.shape[1] != tok.D or out_of_range:
        raise DataError(f"{source}: ids do not fit its tokenizer (D={tok.D}, K={tok.K})")
    return x, tok


def _resume_or_new(args, build) -> MaM:
    """On --resume with an existing checkpoint, rebuild the model from it (its config wins)."""
    path = Path(args.out) / CHECKPOINT_NAME
    if args.resume and path.exists():
        return ckpt.load(path, resolve_device(args.device))
    return build()


def _report(result, what: str) -> None:
    if not dist.is_main():
        return
    last = result.history[-1] if result.history else {}
    shown = shown_metrics(last)
    state = "stopped early" if result.stopped_early else "finished"
    print(f"{what} {state} at step {result.step} in {result.seconds:.1f}s; last: "
          f"{json.dumps(shown)}")
    if result.checkpoint:
        print(f"checkpoint: {result.checkpoint}")


def run_train_arm(args) -> None:
    x, vocab, tok = _load_data(args)
    device = resolve_device(args.device)

    def build():
        if args.init:
            model = ckpt.load(args.init, device)
            if model.vocab != vocab or model.D != x.shape[1]:
                raise CLIError(f"--init {args.init} reads another vocabulary or length than "
                               f"{args.data}")
            return model
        return MaM(_network_config(args, x.shape[1], vocab.K), vocab,
                   {"data": args.data}).to(device)

    model = _resume_or_new(args, build)
    if tok is not None:
        attach_tokenizer(model, tok)
    cfg = _train_config(args, args.preset)
    kw = _train_kwargs(args)
    if args.eval_every and tok is not None:
        from ..chem.moses import load_moses
        from ..workflows.monitor import molecule_monitor

        heldout = tok.encode_filtered(load_moses("test", limit=args.eval_molecules)).ids
        kw["on_log"] = molecule_monitor(model, heldout, args.eval_every, args.eval_samples,
                                        seed=args.seed)
    res = train_arm(model, x.to(model.device), cfg, **kw)
    _report(res, "stage 1 (AO-ARM)")


def run_distill(args) -> None:
    def build():
        model = ckpt.load(args.init, resolve_device(args.device))
        if args.marginal_pool:
            model = model.with_marginal_pool(args.marginal_pool)
        if args.marginal_from:
            model.copy_marginal_from(ckpt.load(args.marginal_from, model.device))
        return model

    model = _resume_or_new(args, build)
    x, _, _ = _load_data(args, tokenizer_of(model))
    cfg = _train_config(args, args.preset)
    res = distill(model, x.to(model.device), cfg,
                  warm_start=not (args.no_warm_start or args.marginal_from),
                  **_train_kwargs(args))
    _report(res, "stage 2 (distillation)")


def _molecule_tokenizer(args, init_model: MaM | None):
    """The tokenizer a molecular energy decodes with: the --init model's, else the shipped
    SELFIES vocabulary padded to --length (training from scratch)."""
    if init_model is not None:
        tok = tokenizer_of(init_model)
        if tok is None:
            raise CLIError(f"--init {args.init} is not a molecule model; molecular energies need "
                           "one")
        return tok
    return default_tokenizer(args.length)


def _build_energy(args, init_model: MaM | None = None):
    from energies import MOLECULAR_ENERGIES, get_energy

    if args.reward_spec:
        return _build_spec_reward(args, init_model)
    name = args.energy or "ising"
    if name == "ising":
        if args.ising_size is None:
            raise CLIError("--energy ising needs --ising-size N")
        return get_energy("ising", n=args.ising_size, sigma=args.sigma, bias=args.bias)
    try:
        params = json.loads(args.energy_params) if args.energy_params else {}
    except json.JSONDecodeError as err:
        raise CLIError(f"--energy-params is not valid JSON: {err}") from None
    if not isinstance(params, dict):
        raise CLIError("--energy-params must be a JSON object, e.g. '{\"tau\": 0.1}'")
    for key in ("target", "tau", "smarts"):
        if getattr(args, key, None) is not None:
            params[key] = getattr(args, key)
    if name in MOLECULAR_ENERGIES:
        params["tokenizer"] = _molecule_tokenizer(args, init_model)
    try:
        return get_energy(name, **params)
    except (TypeError, ValueError) as err:
        raise CLIError(f"cannot build energy {name!r}: {err}") from None


def _build_spec_reward(args, init_model: MaM | None):
    """--reward-spec FILE: the reward the Fine-tune page and Python build, through one builder."""
    from energies import build_reward, load_reward_spec

    clashing = [f"--{k.replace('_', '-')}" for k in ("energy", "energy_params", "target", "tau",
                                                      "smarts")
                if getattr(args, k, None) is not None]
    if clashing:
        raise CLIError(f"--reward-spec describes the whole reward; drop {', '.join(clashing)}")
    try:
        spec = load_reward_spec(args.reward_spec)
    except ValueError as err:
        raise CLIError(f"--reward-spec: {err}") from None
    return build_reward(spec, tokenizer=_molecule_tokenizer(args, init_model))


def _eb_template(args, model: MaM):
    """The fixed substructure: --fragment (molecules) or --template (token models), or None."""
    if args.fragment:
        tok = tokenizer_of(model)
        if tok is None:
            raise CLIError("--fragment needs a molecule model; use --template for token models")
        try:  # the Fine-tune page's plan: attachment points for fragment-block models
            return fine_tune_template(model, args.fragment, args.start)
        except FragmentError as err:
            raise CLIError(f"--fragment: {err}") from None
    if args.template:
        return load_token_text(args.template, model, "--template")[0]
    return None


#: train-eb settings for fine-tuning with the sampler method where none are given
SAMPLER_DEFAULTS = {"steps": 100, "batch_size": 32, "lr": 1e-4, "warmup": 10, "sc_weight": 1.0}


def run_train_eb(args) -> None:
    device = resolve_device(args.device)
    init_model = ckpt.load(args.init, device) if args.init else None
    energy = _build_energy(args, init_model)
    info = energy_run_info(energy)

    def build():
        if init_model is not None:
            return copy.deepcopy(init_model)
        vocab = getattr(energy, "vocab", None) or Vocabulary.integers(energy.K, name=info["energy"])
        model = MaM(_network_config(args, energy.D, energy.K), vocab, {}).to(device)
        tok = getattr(energy, "tokenizer", None)
        if tok is not None:
            attach_tokenizer(model, tok)
        return model

    model = _resume_or_new(args, build)
    if model.D != energy.D or model.K != energy.K:
        raise CLIError(f"the model has D={model.D}, K={model.K} but the energy needs D={energy.D}, "
                       f"K={energy.K}")
    template = _eb_template(args, model)
    cfg = _train_config(args, args.preset)
    if init_model is not None and fine_tune_method(init_model, args.method) == "sampler":
        # the preset's settings are for chains on small lattices; fresh molecules each step
        # need a gentler start (docs/lipophilicity)
        given = {k: getattr(args, k, None) for k in SAMPLER_DEFAULTS}
        cfg = dataclasses.replace(cfg, **{k: v for k, v in SAMPLER_DEFAULTS.items()
                                          if given[k] is None})
        if args.precision is None:  # as the app: bfloat16 where it is faster
            cfg = dataclasses.replace(cfg, precision=fine_tune_precision(init_model, args.method))
    if init_model is not None:
        res = fine_tune(model, energy, cfg, beta=args.beta, template=template, prior=init_model,
                        method=args.method, run_info=info, **_train_kwargs(args))
        _report(res, f"fine-tuning (β={args.beta:g})")
    else:
        res = train_eb(model, energy, cfg, template=template, run_info=info, **_train_kwargs(args))
        _report(res, "energy-based training")


def add_parsers(sub) -> None:
    """The training subcommands (train-arm, distill, train-eb)."""
    p = sub.add_parser("train-arm",
                       help="stage 1: fit any-order conditionals (AO-ARM objective) on data")
    _add_data(p)
    _add_train(p, "cpu_tiny")
    _add_network(p)
    p.add_argument("--init", help="continue from this model's weights (its network and "
                   "tokenizer; the data must use the same vocabulary) instead of a new network")
    p.add_argument("--l2r-fraction", type=float,
                   help="share of rows trained in the left-to-right order, which the samplers "
                        "of SMILES and fragment-block models use (default 0: uniform orders)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="molecules: every N steps add held-out NLL (MOSES test) and sample "
                        "quality to the history")
    p.add_argument("--eval-molecules", type=int, default=1000,
                   help="held-out molecules for --eval-every")
    p.add_argument("--eval-samples", type=int, default=128,
                   help="samples for the quality check of --eval-every")
    p.set_defaults(func=run_train_arm)

    p = sub.add_parser("distill", help="stage 2: distil one-pass marginals from a stage-1 model")
    _add_data(p)
    p.add_argument("--init", required=True, help="stage-1 checkpoint to start from")
    _add_train(p, "cpu_tiny")
    p.add_argument("--data-fraction", type=float,
                   help="share of each batch from data (rest: on-policy chains)")
    p.add_argument("--gibbs-k", type=int, help="censor-and-resample block size (default 4)")
    p.add_argument("--sc-steps", type=int,
                   help="consecutive steps of an order per consistency constraint (default 1; "
                        "k > 1 costs k frozen conditional passes per row and penalises the "
                        "error a marginal accumulates along them)")
    p.add_argument(
        "--marginal-pool",
        choices=["cls", "cls+sum"],
        help="shape of the marginal head (default: the stage-1 checkpoint's); cls+sum adds "
             "per-position scores",
    )
    p.add_argument("--no-warm-start", action="store_true",
                   help="do not start θ's trunk from φ's trained trunk")
    p.add_argument("--marginal-from", metavar="CKPT",
                   help="start θ from this earlier distillation (same network), e.g. of an "
                        "earlier stage-1 checkpoint, instead of from φ's trunk")
    p.set_defaults(func=run_distill)

    p = sub.add_parser("train-eb", help="energy-based training towards p*(x) ∝ f(x), no data")
    p.add_argument("--energy", help="energy name (see energies/); default ising")
    p.add_argument("--reward-spec", metavar="FILE",
                   help="molecules: a reward spec (.toml or .json; components, transforms, "
                        "weights, aggregate; see energies/spec.py) instead of --energy")
    p.add_argument("--energy-params", help="JSON object of energy parameters")
    p.add_argument("--ising-size", type=int, help="Ising lattice side N (D = N*N)")
    p.add_argument("--sigma", type=float, default=0.1, help="Ising coupling σ (default 0.1)")
    p.add_argument("--bias", type=float, default=0.2, help="Ising field (default 0.2)")
    p.add_argument("--target", type=float,
                   help="target value of the property (lipophilicity: logP, paper -4)")
    p.add_argument("--tau", type=float, help="temperature of the reward (lipophilicity: paper 0.1)")
    p.add_argument("--smarts", help="substructure energy: SMARTS pattern that must be present")
    p.add_argument("--length", type=int, default=55,
                   help="molecular energies from scratch: D (paper 55)")
    p.add_argument(
        "--init",
        help="fine-tune this checkpoint (e.g. data/models/default.pt) towards p_prior^β·f "
        "instead of training a new network towards f",
    )
    p.add_argument("--beta", type=float, default=1.0,
                   help="with --init: weight β of the prior (0 = reward only)")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="with --init: 'sampler' draws fresh molecules as the app does (left to "
                        "right under the syntax constraint) and trains those conditionals; "
                        "'chains' uses persistent block-Gibbs chains (the paper's); auto: sampler "
                        "for SMILES and fragment-block models")
    p.add_argument("--fragment",
                   help="molecule models: SMILES fragment kept fixed (a fixed substructure)")
    p.add_argument("--start", type=int, default=0, help="position of the fragment's first token")
    p.add_argument("--template",
                   help="token models: ids with ? for the positions to train on, inline or a file")
    _add_train(p, "mlp_eb")
    _add_network(p)
    p.add_argument("--sc-weight", type=float, help="λ, the self-consistency weight (default 4)")
    p.add_argument("--gibbs-k", type=int, help="censor-and-resample block size (default 4)")
    p.set_defaults(func=run_train_eb)

