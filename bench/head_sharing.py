"""Benchmark: do the marginal and conditional heads train better on one shared trunk or two?

Runs both training modes on exactly enumerable problems, same seeds and steps, and prints exact
KL divergences (by enumeration) and wall time for each setting:

* energy-based: 3×3 periodic Ising (σ = 0.5, bias 0.2), KL(p_θ‖p*) of the normalised MaM
  marginal and of the conditional head's left-to-right ARM;
* maximum likelihood: a D = 8, K = 3 pairwise random field, stage 1 then stage 2,
  KL(p*‖p_θ) and the mean |MaM − AO-ARM| on half-masked data.

    python bench/head_sharing.py --eb-steps 1500 --mle-steps 2000
"""

from __future__ import annotations

import argparse
import time

import torch

from energies import IsingEnergy
from mam_core import MaM, NetworkConfig, TrainConfig, distill, train_arm, train_eb
from mam_core.core.enumeration import kl_divergence as _kl
from mam_core.core.enumeration import pairwise_field


def eb_run(shared: bool, steps: int, hidden: int) -> dict:
    torch.manual_seed(0)
    energy = IsingEnergy(3, sigma=0.5, bias=0.2)
    model = MaM(NetworkConfig(D=9, K=2, arch="mlp", hidden=hidden, n_layers=3, shared_trunk=shared))
    t0 = time.perf_counter()
    train_eb(model, energy, TrainConfig(steps=steps, batch_size=256), progress=False)
    secs = time.perf_counter() - t0
    states, logp = energy.all_states(), energy.exact_log_probs()
    with torch.no_grad():
        lm = model.log_marginal(states).double()
    log_z = float(torch.logsumexp(lm, 0))
    return {
        "KL(MaM||p*)": _kl(lm - log_z, logp),
        "KL(ARM||p*)": _kl(model.log_likelihood_arm(states, order="l2r"), logp),
        "log Z_MaM": log_z,
        "seconds": secs,
    }


def mle_run(shared: bool, steps: int, hidden: int) -> dict:
    torch.manual_seed(0)
    D, K = 8, 3
    xs, logp = pairwise_field(D, K, seed=1)
    g = torch.Generator().manual_seed(0)
    data = xs[torch.multinomial(logp.exp(), 20000, replacement=True, generator=g)]
    model = MaM(NetworkConfig(D=D, K=K, arch="mlp", hidden=hidden, n_layers=3, shared_trunk=shared))
    t0 = time.perf_counter()
    train_arm(model, data, TrainConfig(steps=steps, batch_size=256), progress=False)
    kl_arm = _kl(logp, model.log_likelihood_arm(xs, order="l2r"))
    distill(model, data, TrainConfig(steps=steps, batch_size=256), progress=False)
    secs = time.perf_counter() - t0
    with torch.no_grad():
        lm = model.log_marginal(xs).double()
        partial = data[:400].clone()
        partial[torch.rand(400, D, generator=torch.Generator().manual_seed(5)) < 0.5] = K
        arm = model.log_likelihood_arm(partial, num_orders=16, seed=0)
        gap = float((model.log_marginal(partial).double() - arm).abs().mean())
    return {"KL(p*||ARM)": kl_arm, "KL(p*||MaM)": _kl(logp, lm), "|MaM-AOARM| half-masked": gap,
            "seconds": secs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eb-steps", type=int, default=1500)
    p.add_argument("--mle-steps", type=int, default=2000)
    p.add_argument("--hidden", type=int, default=256)
    args = p.parse_args()
    for name, fn, steps in [("energy-based, Ising 3x3", eb_run, args.eb_steps),
                            ("MLE two stages, D=8 K=3", mle_run, args.mle_steps)]:
        print(f"\n{name} ({steps} steps, hidden {args.hidden})")
        rows = {label: fn(shared, steps, args.hidden)
                for label, shared in [("separate trunks", False), ("shared trunk", True)]}
        cols = list(next(iter(rows.values())))
        print(f"{'':<18}" + "".join(f"{c:>26}" for c in cols))
        for label, r in rows.items():
            print(f"{label:<18}" + "".join(f"{r[c]:>26.4f}" for c in cols))


if __name__ == "__main__":
    main()
