"""Designing molecules towards low lipophilicity (logP target −4), three ways, measured on samples.

1. **From scratch** (the paper's setting): an energy-based MaM learns p ∝ f on SELFIES (D = 55)
   with no data, f = exp(−(logP + 4)² / τ).
2. **Fine-tuning** the shipped default model towards p_prior^β · f (stays drug-like).
3. **Fine-tuning with a fixed substructure**: a fragment kept as it is (for fragment-block
   models new atoms go only where it has attachment points); only the rest is sampled and trained.

For each: samples before and after drawn as the app draws them (:func:`generate_molecules` at the
model's stored sampling settings, failed rows drawn again, repeats kept), validity at the first
draw and after, uniqueness, mean
logP, the fraction within ±0.5 of the target, mean QED, GenMol's quality (valid, unique, QED ≥ 0.6
and SA ≤ 4) and a logP histogram (Plotly) written beside ``report.md`` in ``--out``.

    python bench/lipophilicity_design.py --out docs/lipophilicity
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch

from energies import get_energy
from mam_core import MaM, NetworkConfig
from mam_core.chem.metrics import drug_like_quality, sample_quality
from mam_core.chem.molecules import attach_tokenizer, default_tokenizer, tokenizer_of
from mam_core.core.checkpoint import load
from mam_core.core.config import TrainConfig
from mam_core.paths import default_model_path
from mam_core.training import train_eb
from mam_core.workflows.finetune import (METHODS, fine_tune, fine_tune_method,
                                         fine_tune_precision, fine_tune_template)
from mam_core.workflows.generate import generate_molecules, recommended_sampling


def summarise(model: MaM, n: int, target: float, fragment: str | None = None,
              seed: int = 0) -> tuple[dict, np.ndarray]:
    """What a chemist gets: ``n`` molecules drawn as the app draws them (a row that fails the
    validity check drawn again, repeats kept so that uniqueness measures the model)."""
    table = generate_molecules(model, n, fragment=fragment, seed=seed, distinct=False,
                               **recommended_sampling(model))
    smiles = table["SMILES"].tolist()
    logp = table["logP"].to_numpy(dtype=float)
    q = sample_quality(smiles)
    ok = np.isfinite(logp)
    return {
        "valid_first_draw": float(np.mean(table["valid"] & (table["rounds"] == 1))),
        "validity": q["validity"],
        "uniqueness": q["uniqueness"],
        "mean_logP": float(np.nanmean(logp)),
        "within_0.5": float(np.mean(np.abs(logp[ok] - target) <= 0.5)) if ok.any() else 0.0,
        "mean_QED": float(np.nanmean(table["QED"].to_numpy(dtype=float))),
        "quality": drug_like_quality(smiles),
    }, logp


def write_report(out: Path, args, results: dict, hists: dict) -> str:
    """Write metrics.json, the histogram and report.md for the runs so far; return the table.

    Called after every run, so a long benchmark that is cut short still leaves its finished rows.
    """
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    fig = go.Figure()
    for name, logp in hists.items():
        fig.add_histogram(x=logp[np.isfinite(logp)], name=name, opacity=0.55,
                          histnorm="probability density")
    fig.add_vline(x=args.target, line_dash="dash", annotation_text="target")
    fig.update_layout(barmode="overlay",
                      title=f"logP of {args.samples:,} samples, before and after",
                      xaxis_title="logP (Crippen)")
    fig.write_html(out / "logp_hist.html", include_plotlyjs="cdn")

    cols = ["valid_first_draw", "validity", "uniqueness", "mean_logP", "within_0.5", "mean_QED",
            "quality", "train_seconds"]
    table = "| run | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    for name, r in results.items():
        table += f"| {name} | " + " | ".join(f"{r[c]:.3g}" if c in r else "" for c in cols) + " |\n"
    (out / "report.md").write_text(
        f"# Designing towards logP = {args.target:g}\n\nReward log f = "
        f"−(logP − ({args.target:g}))² / {args.tau:g}; fine-tuning target p_prior^β·f with "
        f"β = {args.beta:g} "
        f"({args.method} method, batch {args.batch_size}, learning rate {args.finetune_lr:g}, "
        f"{args.precision} steps); "
        f"fragment `{args.fragment}` kept in the `fine-tune + fragment` rows. {args.samples} "
        "molecules per row, drawn as the app draws them (the model's stored sampling "
        "settings, a row that fails the validity check drawn again up to 4 times, repeats "
        "kept); `valid_first_draw` is the fraction valid at the first draw, `within_0.5` "
        "the fraction with |logP − target| ≤ 0.5, "
        "`quality` GenMol's (valid, unique, QED ≥ 0.6 and SA ≤ 4, over requested)."
        f"\n\n{table}\nHistogram: [logp_hist.html](logp_hist.html).\n\nReproduce: `python "
        f"bench/lipophilicity_design.py --tau {args.tau:g} --beta {args.beta:g} "
        + ("" if args.only == "finetune" else
           f"--scratch-steps {args.scratch_steps} --scratch-lr {args.scratch_lr:g} ")
        + ("" if args.only == "scratch" else
           f"--finetune-steps {args.finetune_steps} --finetune-lr {args.finetune_lr:g} "
           f"--batch-size {args.batch_size} --method {args.method} "
           f"--precision {args.precision} ")
        + f"--samples {args.samples} "
        f"{'--only ' + args.only + ' ' if args.only else ''}--out {args.out}`\n"
    )
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", type=float, default=-4.0)
    p.add_argument("--tau", type=float, default=0.1)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--scratch-steps", type=int, default=1500)
    p.add_argument("--finetune-steps", type=int, default=300)
    p.add_argument("--scratch-lr", type=float, default=1e-3)
    p.add_argument("--finetune-lr", type=float, default=3e-4)
    p.add_argument("--batch-size", type=int, default=32, help="fine-tuning batch")
    p.add_argument("--method", default="auto", choices=METHODS,
                   help="fine-tuning method (auto: sampler for SMILES and fragment-block models)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="arithmetic of the fine-tuning steps (auto: the app's choice, "
                        "mam_core.workflows.finetune.fine_tune_precision)")
    p.add_argument("--fragment", default="[*]c1ccccc1")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--out", default="docs/lipophilicity")
    p.add_argument("--only", choices=["finetune", "scratch"], help="run only these rows")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    results, hists = {}, {}

    # 1. fine-tuning the default model, 2. with a fixed fragment (first: what a chemist runs)
    for label, fragment in (("fine-tune", None),
                            ("fine-tune + fragment",
                             args.fragment)) if args.only != "scratch" else ():
        model = load(default_model_path())
        tok = tokenizer_of(model)
        args.method = fine_tune_method(model, args.method)
        if args.precision == "auto":
            args.precision = fine_tune_precision(model, args.method)
        template = fine_tune_template(model, fragment)
        energy = get_energy("lipophilicity", tokenizer=tok, target=args.target, tau=args.tau)
        key = f"{label}: before"
        results[key], hists[key] = summarise(model, args.samples, args.target, fragment)
        cfg = TrainConfig(steps=args.finetune_steps, batch_size=args.batch_size,
                          lr=args.finetune_lr, sc_weight=1.0, log_every=10,
                          warmup=min(10, args.finetune_steps // 10), precision=args.precision)
        t0 = time.perf_counter()
        fine_tune(model, energy, cfg, beta=args.beta, template=template, method=args.method)
        seconds = round(time.perf_counter() - t0, 1)
        key = f"{label}: after"
        results[key], hists[key] = summarise(model, args.samples, args.target, fragment)
        results[key]["train_seconds"] = seconds
        write_report(out, args, results, hists)

    # 3. from scratch (the paper's setting)
    if args.only == "finetune":
        print(write_report(out, args, results, hists))
        return
    tok = default_tokenizer(55)
    energy = get_energy("lipophilicity", tokenizer=tok, target=args.target, tau=args.tau)
    scratch = MaM(NetworkConfig(D=tok.D, K=tok.K, arch="mlp", hidden=512, n_layers=3), tok.vocab)
    attach_tokenizer(scratch, tok)
    key = "scratch: untrained"
    results[key], hists[key] = summarise(scratch, args.samples, args.target)
    t0 = time.perf_counter()
    train_eb(scratch, energy,
             TrainConfig(steps=args.scratch_steps, batch_size=128, lr=args.scratch_lr,
                         sc_weight=1.0))
    seconds = round(time.perf_counter() - t0, 1)
    key = "scratch: trained"
    results[key], hists[key] = summarise(scratch, args.samples, args.target)
    results[key]["train_seconds"] = seconds
    write_report(out, args, results, hists)

    print(write_report(out, args, results, hists))


if __name__ == "__main__":
    main()
