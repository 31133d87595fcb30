"""The ``mam`` command line: train (AO-ARM, distillation, energy-based), sample and score.

Each subcommand maps to one ``run_<name>`` function.  Only this module prints; the library logs.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from . import distributed as dist
from .config import NetworkConfig, TrainConfig, get_preset, PRESETS
from .datasets import DataError, load_token_file
from .finetune import energy_run_info, fine_tune
from .model import MaM, resolve_device
from .molecules import (
    MoleculeDataError,
    attach_tokenizer,
    default_model_path,
    default_tokenizer,
    encode_source,
    is_smiles_source,
    tokenizer_of,
)
from .tokenizers import make_template
from .trainers import CHECKPOINT_NAME, TrainingDiverged, distill, train_arm, train_eb
from .vocab import Vocabulary

__all__ = ["main", "build_parser"]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- shared options
def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")


def _add_train(p: argparse.ArgumentParser, default_preset: str) -> None:
    _add_common(p)
    p.add_argument("--out", required=True, help="output folder (checkpoint.pt is written there)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    p.add_argument("--preset", default=default_preset, choices=sorted(PRESETS), help=f"size preset (default {default_preset})")
    p.add_argument("--steps", type=int, help="optimizer steps (preset default otherwise)")
    p.add_argument("--batch-size", type=int, help="examples / chains per step")
    p.add_argument("--lr", type=float, help="Adam learning rate")
    p.add_argument("--warmup", type=int, help="linear learning-rate warm-up steps before the cosine decay")
    p.add_argument("--grad-clip", type=float, help="global gradient-norm clip (0 disables; default 1)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, default=50, help="steps between history records")
    p.add_argument("--max-bad-steps", type=int, default=10, help="consecutive non-finite steps before stopping")
    p.add_argument("--stop-file", help="stop cleanly (saving a checkpoint) once this file exists")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_network(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", choices=["transformer", "mlp"], help="network family (preset default otherwise)")
    p.add_argument("--d-model", type=int, help="transformer width")
    p.add_argument("--n-layers", type=int, help="number of blocks")
    p.add_argument("--n-heads", type=int, help="attention heads")
    p.add_argument("--hidden", type=int, help="residual-MLP width")
    p.add_argument("--shared-trunk", action="store_true", help="one trunk for both heads (default: separate)")


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="molecules: moses[:train|test] or a .smi/.csv(.gz) SMILES file; "
        "tokens: .pt/.npy/.txt file or ising:N[:SIGMA[:BIAS]]",
    )
    p.add_argument("--n-samples", type=int, default=20000, help="sample count for synthetic data specs")
    p.add_argument("--tokenizer", default="selfies", choices=["selfies", "smiles"], help="molecule tokenizer (new models)")
    p.add_argument("--max-length", type=int, help="D for molecules (default: longest molecule)")
    p.add_argument("--limit", type=int, help="use only the first N molecules")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for tokenising")


def _train_config(args, preset: str) -> TrainConfig:
    d = dict(get_preset(preset).train)
    for key in ("steps", "batch_size", "lr", "warmup", "grad_clip"):
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
    for key in ("sc_weight", "gibbs_k", "data_fraction"):
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
    prepared = _prepared_data(args.data)
    if prepared is not None:
        x, tok = prepared
        if args.limit:
            x = x[: args.limit]
        return x, tok.vocab, tok
    if is_smiles_source(args.data):
        x, tok = encode_source(
            args.data, tokenizer, args.tokenizer, args.max_length, args.limit, args.jobs, not args.no_progress
        )
        return x, tok.vocab, tok
    x, vocab = load_token_file(args.data, n_samples=args.n_samples, seed=args.seed)
    vocab = vocab or Vocabulary.integers(int(x.max()) + 1 if x.numel() else 2)
    return x, vocab, None


def _prepared_data(source: str):
    """``(ids, tokenizer)`` from a ``mam prepare-data`` file, or ``None`` for any other source."""
    if not source.lower().endswith(".pt") or not Path(source).is_file():
        return None
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - reported as a data error below
        raise DataError(f"{source}: could not be read: {str(err)[:200]}") from None
    if not isinstance(obj, dict) or "tokenizer" not in obj:
        return None
    from .tokenizers import tokenizer_from_dict

    tok = tokenizer_from_dict(obj["tokenizer"])
    x = torch.as_tensor(obj["x"]).long()
    if x.dim() != 2 or x.shape[1] != tok.D or (x.numel() and (int(x.min()) < 0 or int(x.max()) >= tok.K)):
        raise DataError(f"{source}: ids do not fit its tokenizer (D={tok.D}, K={tok.K})")
    return x, tok


def run_prepare_data(args) -> None:
    from .chem.training_data import fragment_block_dataset
    from .moses import load_moses

    if args.data == "moses" or args.data.startswith("moses:"):
        split = args.data.split(":", 1)[1] if ":" in args.data else "train"
        smiles = load_moses(split, wheel=args.wheel, limit=args.limit)
    else:
        from .molecules import read_smiles

        smiles = read_smiles(args.data, args.limit)
    t0 = time.perf_counter()
    tok, x = fragment_block_dataset(smiles, args.copies, args.seed, args.max_length, args.jobs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({"x": x.to(torch.uint8) if tok.K < 256 else x, "vocab": tok.vocab.to_dict(),
                "tokenizer": tok.to_dict(), "source": args.data, "copies": args.copies, "seed": args.seed}, tmp)
    tmp.replace(out)
    print(f"wrote {x.shape[0]:,} strings of {len(smiles):,} molecules (D={tok.D}, K={tok.K}) to {out} "
          f"in {time.perf_counter() - t0:.0f}s")


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
    shown = {k: round(v, 4) for k, v in last.items() if isinstance(v, float)}
    state = "stopped early" if result.stopped_early else "finished"
    print(f"{what} {state} at step {result.step} in {result.seconds:.1f}s; last: {json.dumps(shown)}")
    if result.checkpoint:
        print(f"checkpoint: {result.checkpoint}")


# --------------------------------------------------------------------------- subcommands
def run_train_arm(args) -> None:
    x, vocab, tok = _load_data(args)
    device = resolve_device(args.device)

    def build():
        return MaM(_network_config(args, x.shape[1], vocab.K), vocab, {"data": args.data}).to(device)

    model = _resume_or_new(args, build)
    if tok is not None:
        attach_tokenizer(model, tok)
    cfg = _train_config(args, args.preset)
    kw = _train_kwargs(args)
    if args.eval_every and tok is not None:
        from .workflows.monitor import molecule_monitor
        from .moses import load_moses

        heldout = tok.encode_filtered(load_moses("test", limit=args.eval_molecules)).ids
        kw["on_log"] = molecule_monitor(model, heldout, args.eval_every, args.eval_samples, seed=args.seed)
    res = train_arm(model, x.to(model.device), cfg, **kw)
    _report(res, "stage 1 (AO-ARM)")


def run_distill(args) -> None:
    def build():
        model = ckpt.load(args.init, resolve_device(args.device))
        return model.with_marginal_pool(args.marginal_pool) if args.marginal_pool else model

    model = _resume_or_new(args, build)
    x, _, _ = _load_data(args, tokenizer_of(model))
    cfg = _train_config(args, args.preset)
    res = distill(model, x.to(model.device), cfg, warm_start=not args.no_warm_start, **_train_kwargs(args))
    _report(res, "stage 2 (distillation)")


def _molecule_tokenizer(args, init_model: MaM | None):
    """The tokenizer a molecular energy decodes with: the --init model's, else the shipped
    SELFIES vocabulary padded to --length (training from scratch)."""
    if init_model is not None:
        tok = tokenizer_of(init_model)
        if tok is None:
            raise CLIError(f"--init {args.init} is not a molecule model; molecular energies need one")
        return tok
    return default_tokenizer(args.length)


def _build_energy(args, init_model: MaM | None = None):
    from energies import MOLECULAR_ENERGIES, get_energy

    if args.energy == "ising":
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
    if args.energy in MOLECULAR_ENERGIES:
        params["tokenizer"] = _molecule_tokenizer(args, init_model)
    try:
        return get_energy(args.energy, **params)
    except (TypeError, ValueError) as err:
        raise CLIError(f"cannot build energy {args.energy!r}: {err}") from None


def _eb_template(args, model: MaM):
    """The fixed substructure: --fragment (molecules) or --template (token models), or None."""
    if args.fragment:
        tok = tokenizer_of(model)
        if tok is None:
            raise CLIError("--fragment needs a molecule model; use --template for token models")
        return make_template(tok, args.fragment, start=args.start)
    if args.template:
        return load_token_text(args.template, model, "--template")[0]
    return None


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
        raise CLIError(f"the model has D={model.D}, K={model.K} but the energy needs D={energy.D}, K={energy.K}")
    template = _eb_template(args, model)
    cfg = _train_config(args, args.preset)
    if init_model is not None:
        res = fine_tune(model, energy, cfg, beta=args.beta, template=template, prior=init_model, run_info=info, **_train_kwargs(args))
        _report(res, f"fine-tuning (β={args.beta:g})")
    else:
        res = train_eb(model, energy, cfg, template=template, run_info=info, **_train_kwargs(args))
        _report(res, "energy-based training")


def _load_model(args) -> MaM:
    """--model, or the shipped default molecule model when none is given."""
    if args.model is None:
        path = default_model_path()  # read per call so $MAM_DEFAULT_MODEL is honoured
        if not path.is_file():
            raise CLIError(f"no --model given and no default model at {path}")
        return ckpt.load(path, resolve_device(args.device))
    return ckpt.load(args.model, resolve_device(args.device))


def _format_row(model: MaM, row) -> str:
    return " ".join(model.vocab.decode(row, strip_pad=False))


def _parse_order(spec: str, D: int):
    """A named order, or typed positions (listed first, the rest left to right), as in the app."""
    from .orders import ORDERS, parse_order
    from .sampling import DYNAMIC_ORDERS

    if spec in ORDERS or spec in DYNAMIC_ORDERS:
        return spec
    try:
        return parse_order(spec, D)
    except ValueError as err:
        raise CLIError(
            f"--order must be one of {', '.join(sorted(ORDERS) + list(DYNAMIC_ORDERS))} or positions: {err}"
        ) from None


def run_sample(args) -> None:
    model = _load_model(args)
    tok = tokenizer_of(model)
    order = _parse_order(args.order, model.D)
    t0 = time.perf_counter()
    if tok is not None and args.template is None:
        from .chem.fragments import FragmentError
        from .workflows.generate import STATUS_OK, generate_molecules

        try:
            table = generate_molecules(model, args.n, fragment=args.fragment, start=args.start, order=order,
                                       temperature=args.temperature, top_p=args.top_p, seed=args.seed)
        except FragmentError as err:
            raise CLIError(str(err)) from None
        dt = time.perf_counter() - t0
        for notice in table.attrs.get("notices", []):
            print(f"note: {notice}", file=sys.stderr)
        summary = table.attrs["summary"]
        print(f"{summary['requested']} requested, {summary['valid']} valid, "
              f"{summary['matched'] if summary['matched'] is not None else '-'} matched, "
              f"{summary['unique']} unique ({dt:.2f}s)", file=sys.stderr)
        lines = [s if st == STATUS_OK else f"{s}\t# failed: {st}" for s, st in zip(table["SMILES"], table["status"])]
    else:
        if args.fragment:
            raise CLIError("--fragment needs a molecule model; use --template for token models")
        template = load_token_text(args.template, model, "--template")[0] if args.template else None
        x = model.sample(args.n, order=order, template=template, temperature=args.temperature, seed=args.seed,
                         top_p=args.top_p)
        dt = time.perf_counter() - t0
        lines = tok.decode_batch(x.cpu()) if tok is not None else [_format_row(model, r) for r in x.cpu()]
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"wrote {len(lines)} samples to {args.out} ({dt:.2f}s)")
    else:
        print("\n".join(lines))


def load_token_text(text_or_path: str, model: MaM, what: str) -> torch.Tensor:
    """Rows of token ids (``?`` = masked) from a file path or an inline string."""
    p = Path(text_or_path)
    lines = p.read_text(encoding="utf-8").splitlines() if p.is_file() else [text_or_path]
    try:
        from .datasets import parse_token_rows

        return parse_token_rows(lines, mask_id=model.mask_id, K=model.K, source=what)
    except DataError as err:
        raise CLIError(str(err)) from None


#: Calibrations made by this process for models that store none, by (path, modification time).
_CALIBRATIONS: dict = {}


def _score_molecules_cli(args, model: MaM) -> None:
    """One CSV row per input line, in order: the outlier table of :mod:`mam_core.workflows.outliers`."""
    from .moses import load_moses
    from .workflows.outliers import calibrate, calibration_of, score_table

    p = Path(args.input)
    if not p.is_file():
        raise CLIError(f"input file not found: {args.input}")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise CLIError(f"{args.input}: not a UTF-8 text file") from None
    smiles = [ln.split()[0] if ln.strip() else "" for ln in lines]
    cal = calibration_of(model)
    made_now = ""
    if cal is None and args.score in ("likelihood_ratio", "length_z"):
        key = (str(args.model), Path(args.model).stat().st_mtime if args.model else 0.0)
        if key not in _CALIBRATIONS:
            _CALIBRATIONS[key] = calibrate(model, load_moses("train", limit=2000),
                                           "embedded MOSES train (first 2,000)", store=False)
        cal = _CALIBRATIONS[key]
        made_now = "; no stored calibration, so 2,000 training molecules were scored for it (`mam eval` stores one)"
    t0 = time.perf_counter()
    table = score_table(model, smiles, args.score, cal)
    dt = time.perf_counter() - t0
    table["error"] = [e if s else "empty line" for s, e in zip(smiles, table["error"])]
    if args.arm:
        from .evaluation import likelihood_agreement

        tok = tokenizer_of(model)
        ok = [i for i, e in enumerate(table["error"]) if not e]
        arm = np.full(len(table), np.nan)
        if ok:
            ids = tok.encode_batch([smiles[i] for i in ok]).to(model.device)
            with torch.no_grad():
                arm[ok] = likelihood_agreement(model, ids, args.orders, args.batch_size, args.seed, True).arm
        table.insert(2, "log_likelihood_arm", arm)
    table = table.drop(columns=["n_tokens"])
    if args.out:
        table.to_csv(args.out, index=False, float_format="%.6f")
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.6f")
    bad = int((table["error"] != "").sum())
    print(f"scored {len(table) - bad} of {len(table)} lines in {dt:.2f}s ({args.score} score; "
          f"{bad} out of domain, ranked most atypical with the reason in 'error'{made_now})", file=sys.stderr)


def run_score(args) -> None:
    model = _load_model(args)
    if tokenizer_of(model) is not None:
        _score_molecules_cli(args, model)
        return
    x = load_token_text(args.input, model, args.input)
    if x.shape[1] != model.D:
        raise CLIError(f"{args.input}: sequences have {x.shape[1]} tokens; the model needs D={model.D}")
    from .evaluation import likelihood_agreement  # pandas/scipy only when scoring

    with torch.no_grad():
        scored = likelihood_agreement(model, x.to(model.device), args.orders, args.batch_size, args.seed, args.arm)
    lm, t_mam = scored.mam, scored.seconds_mam
    arm, t_arm = (scored.arm, scored.seconds_arm) if args.arm else (None, None)
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    w = csv.writer(out)
    w.writerow(["row", "observed", "log_marginal_mam"] + (["log_likelihood_arm"] if arm is not None else []))
    for i in range(x.shape[0]):
        row = [i, int((x[i] != model.mask_id).sum()), f"{float(lm[i]):.6f}"]
        if arm is not None:
            row.append(f"{float(arm[i]):.6f}")
        w.writerow(row)
    if args.out:
        out.close()
    msg = f"scored {x.shape[0]} rows: MaM {t_mam:.3f}s (one pass)"
    if arm is not None:
        msg += f", AO-ARM {t_arm:.3f}s ({args.orders} order(s), D={model.D} passes each), speed-up {t_arm / max(t_mam, 1e-9):.1f}x"
    print(msg, file=sys.stderr)


def run_eval(args) -> None:
    from .evaluation import evaluate_molecule_model
    from .moses import load_moses

    model = _load_model(args)
    order = _parse_order(args.order, model.D)
    result = evaluate_molecule_model(
        model, load_moses("test"), load_moses("train"), args.out, args.n_test, args.n_samples, args.orders,
        args.fragment, args.seed, order=order, temperature=args.temperature, top_p=args.top_p,
        with_fcd=False if args.no_fcd else None, moses_wheel=args.moses_wheel,
    )
    full = result["likelihood"]["test molecules"]
    fcd_line = ""
    if result["fcd"]:
        fcd_line = f"; FCD/Test {result['fcd']['samples']['FCD/Test']:.3f}"
    print(
        f"report: {Path(args.out) / 'report.md'}\n"
        f"NLL AO-ARM {full['nll_arm_nats']:.2f} vs MaM {full['nll_mam_nats']:.2f} nats; "
        f"Spearman {full['spearman']:.3f}, Pearson {full['pearson']:.3f}; speed-up {full['speedup']:.1f}x; "
        f"validity {result['samples']['validity']:.3f}, uniqueness {result['samples']['uniqueness']:.3f}, "
        f"novelty {result['samples']['novelty']:.3f}, quality {result['samples']['quality']:.3f}{fcd_line}"
    )


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mam", description="Generative Marginalization Models (MaM Studio)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-arm", help="stage 1: fit any-order conditionals (AO-ARM objective) on data")
    _add_data(p)
    _add_train(p, "cpu_tiny")
    _add_network(p)
    p.add_argument("--eval-every", type=int, default=0,
                   help="molecules: every N steps add held-out NLL (MOSES test) and sample quality to the history")
    p.add_argument("--eval-molecules", type=int, default=1000, help="held-out molecules for --eval-every")
    p.add_argument("--eval-samples", type=int, default=128, help="samples for the quality check of --eval-every")
    p.set_defaults(func=run_train_arm)

    p = sub.add_parser("distill", help="stage 2: distil one-pass marginals from a stage-1 model")
    _add_data(p)
    p.add_argument("--init", required=True, help="stage-1 checkpoint to start from")
    _add_train(p, "cpu_tiny")
    p.add_argument("--data-fraction", type=float, help="share of each batch from data (rest: on-policy chains)")
    p.add_argument("--gibbs-k", type=int, help="censor-and-resample block size (default 4)")
    p.add_argument(
        "--marginal-pool",
        choices=["cls", "cls+sum"],
        help="shape of the marginal head (default: the stage-1 checkpoint's); cls+sum adds per-position scores",
    )
    p.add_argument("--no-warm-start", action="store_true", help="do not start θ's trunk from φ's trained trunk")
    p.set_defaults(func=run_distill)

    p = sub.add_parser("train-eb", help="energy-based training towards p*(x) ∝ f(x), no data")
    p.add_argument("--energy", default="ising", help="energy name (see energies/); default ising")
    p.add_argument("--energy-params", help="JSON object of energy parameters")
    p.add_argument("--ising-size", type=int, help="Ising lattice side N (D = N*N)")
    p.add_argument("--sigma", type=float, default=0.1, help="Ising coupling σ (default 0.1)")
    p.add_argument("--bias", type=float, default=0.2, help="Ising field (default 0.2)")
    p.add_argument("--target", type=float, help="target value of the property (lipophilicity: logP, paper -4)")
    p.add_argument("--tau", type=float, help="temperature of the reward (lipophilicity: paper 0.1)")
    p.add_argument("--smarts", help="substructure energy: SMARTS pattern that must be present")
    p.add_argument("--length", type=int, default=55, help="molecular energies from scratch: D (paper 55)")
    p.add_argument(
        "--init",
        help="fine-tune this checkpoint (e.g. data/models/default.pt) towards p_prior^β·f "
        "instead of training a new network towards f",
    )
    p.add_argument("--beta", type=float, default=1.0, help="with --init: weight β of the prior (0 = reward only)")
    p.add_argument("--fragment", help="molecule models: SMILES fragment kept fixed (a fixed substructure)")
    p.add_argument("--start", type=int, default=0, help="position of the fragment's first token")
    p.add_argument("--template", help="token models: ids with ? for the positions to train on, inline or a file")
    _add_train(p, "mlp_eb")
    _add_network(p)
    p.add_argument("--sc-weight", type=float, help="λ, the self-consistency weight (default 4)")
    p.add_argument("--gibbs-k", type=int, help="censor-and-resample block size (default 4)")
    p.set_defaults(func=run_train_eb)

    p = sub.add_parser("prepare-data", help="encode molecules as shuffled fragment blocks for training (.pt)")
    p.add_argument("--data", default="moses", help="moses[:split], a .smi file or a CSV with a SMILES column")
    p.add_argument("--wheel", help="molsets-0.3.1 wheel for the full MOSES splits (default: embedded subset)")
    p.add_argument("--limit", type=int, help="use only the first N molecules")
    p.add_argument("--copies", type=int, default=2, help="shuffled fragment orders per molecule")
    p.add_argument("--max-length", type=int, default=64, help="D; longer strings are dropped")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output .pt file (use it as --data of train-arm/distill)")
    p.set_defaults(func=run_prepare_data)

    p = sub.add_parser("sample", help="any-order sampling, optionally from a template")
    p.add_argument("--model", help="checkpoint file (default: the shipped molecule model)")
    p.add_argument("-n", type=int, default=10, help="number of samples")
    p.add_argument("--template", help="ids with ? for positions to sample, inline or a file")
    p.add_argument("--fragment", help="molecule models: SMILES with attachment points ([*], [1*]) kept in every "
                   "molecule; two dot-separated pieces design a linker; none grows the fragment anywhere")
    p.add_argument("--start", type=int, default=0, help="SELFIES/SMILES models: position of the fragment's first token")
    p.add_argument("--order", dest="order", default="random",
                   help="random, l2r, r2l, confidence (most certain position first), or positions like '3 0 1 2'")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling: keep tokens covering this mass")
    p.add_argument("--out", help="write samples here instead of stdout")
    _add_common(p)
    p.set_defaults(func=run_sample)

    p = sub.add_parser("score", help="log p(x_S) of each input row in one pass (and optionally AO-ARM)")
    p.add_argument("--model", help="checkpoint file (default: the shipped molecule model)")
    p.add_argument("--input", required=True, help="one SMILES per line (molecule models) or one row of ids (? = masked)")
    p.add_argument("--arm", action="store_true", help="also compute the exact AO-ARM value (D passes)")
    p.add_argument("--score", default="likelihood_ratio",
                   choices=["raw", "per_token", "likelihood_ratio", "length_z"],
                   help="molecules: the outlier score (default likelihood_ratio; see bench/outlier_screening.py)")
    p.add_argument("--orders", type=int, default=1, help="random orders for --arm")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", help="CSV output (default stdout)")
    _add_common(p)
    p.set_defaults(func=run_score)

    p = sub.add_parser("eval", help="molecule models: MaM vs AO-ARM likelihoods and sample quality report")
    p.add_argument("--model", help="checkpoint file (default: the shipped molecule model)")
    p.add_argument("--out", required=True, help="report folder (report.md, CSVs, figures)")
    p.add_argument("--n-test", type=int, default=1000, help="held-out MOSES molecules to score")
    p.add_argument("--n-samples", type=int, default=1000, help="molecules to sample")
    p.add_argument("--orders", type=int, default=1, help="random orders for the AO-ARM reference")
    p.add_argument("--fragment", default="[*]c1ccccc1", help="fragment for the conditional-generation check")
    p.add_argument("--order", default="random", help="sampling order: random, l2r, r2l, confidence")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--no-fcd", action="store_true", help="skip the Fréchet ChemNet Distance (slow on CPU)")
    p.add_argument("--moses-wheel", help="molsets-0.3.1 wheel: use MOSES's own test statistics for FCD")
    _add_common(p)
    p.set_defaults(func=run_eval)
    return parser


TRAINING_COMMANDS = ("train-arm", "distill", "train-eb")


def _join_torchrun(args) -> None:
    """Under ``torchrun`` (WORLD_SIZE > 1): join the process group, pin this rank's device and
    silence progress bars on all ranks but 0."""
    if args.command not in TRAINING_COMMANDS:
        raise CLIError(f"only {', '.join(TRAINING_COMMANDS)} run under torchrun; run 'mam {args.command}' as one process")
    args.device = str(dist.init_from_env(args.device))
    if not dist.is_main():
        args.no_progress = True


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    who = f"mam {args.command}"
    try:
        if dist.launched_by_torchrun():
            _join_torchrun(args)
            who = f"mam {args.command} [rank {dist.rank()}]"
        if getattr(args, "threads", None):
            torch.set_num_threads(args.threads)
        if args.command in TRAINING_COMMANDS:
            torch.manual_seed(args.seed)  # the network's initial weights: reruns are reproducible
        args.func(args)
    except (CLIError, DataError, MoleculeDataError, ckpt.CheckpointError, TrainingDiverged, ValueError, OSError, RuntimeError) as err:
        print(f"{who}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{who}: interrupted", file=sys.stderr)
        return 130
    finally:
        if dist.launched_by_torchrun():
            dist.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
