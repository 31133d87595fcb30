"""Energy-based MaM on the paper's 10×10 Ising setting, measured against a long Gibbs chain.

Trains a MaM towards p*(x) ∝ exp(sᵀJs + bᵀs) (σ = 0.1, bias 0.2, periodic) with no data, then
reports, on ground-truth samples from long single-site Gibbs chains:

* the NLL of the ground-truth samples under the model (one-pass MaM marginal, and the exact
  AO-ARM of the same model with D passes for comparison), in nats per lattice;
* the mean energy E = −log f of model samples against the ground truth;
* the mean magnetisation of both.

It writes ``report.md`` and Plotly figures (energy histograms, training curves) to ``--out``.

    python bench/ising_quality.py --steps 3000 --out docs/ising
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch

from mam_core.workflows.ising_demo import compare_with_gibbs, train_ising


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--bias", type=float, default=0.2)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--sweeps", type=int, default=1000, help="Gibbs sweeps per ground-truth chain")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/ising")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    run = train_ising(args.n, args.sigma, args.bias, args.steps, hidden=args.hidden,
                      batch_size=args.batch_size,
                      seed=args.seed, lr=args.lr, progress=True)
    train_s = time.perf_counter() - t0
    cmp = compare_with_gibbs(run, n_samples=args.samples, sweeps=args.sweeps, seed=args.seed)
    gibbs_x = run.energy.gibbs_sample(args.samples, args.sweeps,
                                      generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        arm = run.model.log_likelihood_arm(gibbs_x[:500].to(run.model.device), num_orders=1,
                                           seed=0).numpy()
    model_E, gibbs_E = -cmp["model_log_f"], -cmp["gibbs_log_f"]
    metrics = {
        "D": run.energy.D,
        "steps": args.steps,
        "train_seconds": round(train_s, 1),
        "nll_gibbs_mam_nats": float(-cmp["gibbs_log_p_mam"].mean()),
        "nll_gibbs_mam_bpd": float(-cmp["gibbs_log_p_mam"].mean() / (run.energy.D * np.log(2))),
        "nll_gibbs_arm_nats_500": float(-arm.mean()),
        "mean_energy_model": float(model_E.mean()),
        "mean_energy_gibbs": float(gibbs_E.mean()),
        "std_energy_model": float(model_E.std()),
        "std_energy_gibbs": float(gibbs_E.std()),
        "magnetisation_model": float(cmp["model_magnetisation"].mean()),
        "magnetisation_gibbs": float(cmp["gibbs_magnetisation"].mean()),
        "final_sc_abs_err": run.result.history[-1].get("sc_abs_err"),
        "final_kl_minus_logz": run.result.history[-1].get("kl_minus_logz"),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))

    fig = go.Figure()
    fig.add_histogram(x=gibbs_E, name="Gibbs ground truth", opacity=0.6,
                      histnorm="probability density")
    fig.add_histogram(x=model_E, name="MaM samples", opacity=0.6, histnorm="probability density")
    fig.update_layout(barmode="overlay",
                      title=f"Energy −log f, {args.n}×{args.n} Ising (σ={args.sigma}, "
                            f"b={args.bias})",
                      xaxis_title="energy", yaxis_title="density")
    fig.write_html(out / "energy_hist.html", include_plotlyjs="cdn")
    hist = run.result.history
    curves = go.Figure()
    for key in ("kl_minus_logz", "sc_abs_err", "log_f_mean"):
        curves.add_scatter(x=[r["step"] for r in hist], y=[r.get(key) for r in hist], name=key)
    curves.update_layout(title="Training curves", xaxis_title="step")
    curves.write_html(out / "training_curves.html", include_plotlyjs="cdn")

    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                     for k, v in metrics.items())
    (out / "report.md").write_text(
        f"# Energy-based MaM on the {args.n}×{args.n} Ising model\n\nσ = {args.sigma}, bias = "
        f"{args.bias}, periodic; residual MLP width {args.hidden}, {args.steps} steps, batch "
        f"{args.batch_size}, trained with no data. Ground truth: {args.samples} Gibbs chains × "
        f"{args.sweeps} sweeps. NLL in nats per lattice and bits per dimension (lower is "
        "better).\n\nFor reference, the MaM paper's 10×10 table (σ 0.1, bias 0.2, 2000 "
        "ground-truth samples; ICLR 2024 submission version) lists NLL 0.80 bpd for MaM, 0.79 for "
        "a forward-order ARM and 0.78 for a GFlowNet, all with MLPs trained far longer than this "
        f"CPU run.\n\n| metric | value |\n|---|---|\n{rows}\n\nFigures: [energy "
        "histogram](energy_hist.html), [training curves](training_curves.html).\n\nReproduce: "
        f"`python bench/ising_quality.py --steps {args.steps} --hidden {args.hidden} --out "
        f"{args.out}`\n"
    )
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
