"""Evaluation of a molecule MaM: one-pass marginals against the model's own AO-ARM, and the
quality of its samples.  ``mam eval`` writes the result as a Markdown report, CSV tables and
Plotly figures (HTML) in one folder.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .model import MaM

__all__ = ["LikelihoodAgreement", "correlations", "likelihood_agreement", "mask_random_subsets", "evaluate_molecule_model"]


@dataclass
class LikelihoodAgreement:
    """MaM (one pass) vs AO-ARM (exact, D passes) on the same inputs."""

    mam: np.ndarray  # (N,) log p in nats, one pass
    arm: np.ndarray  # (N,) log p in nats, AO-ARM (NaN when not computed)
    seconds_mam: float
    seconds_arm: float | None  # None when the AO-ARM was not computed
    D: int
    observed: np.ndarray | None = None  # (N,) observed positions |S| per row; None: all D

    @property
    def n(self) -> int:
        return len(self.mam)

    @property
    def tokens_per_row(self) -> float:
        """Mean number of observed positions per row: the tokens a log p(x_S) is spread over."""
        return float(self.D if self.observed is None else np.mean(self.observed))

    def summary(self) -> dict:
        """NLL in nats and bits per token, relative gap, correlations, time per molecule.

        Bits per token divide by the positions actually observed (|S| of each row, summed), not
        by D: a half-masked molecule's log p(x_S) covers half the tokens.
        """
        ln2 = math.log(2)
        nll_mam, nll_arm = -float(self.mam.mean()), -float(self.arm.mean())
        tokens = self.tokens_per_row
        t_arm = float("nan") if self.seconds_arm is None else self.seconds_arm
        return {
            "n": self.n,
            "nll_arm_nats": nll_arm,
            "nll_mam_nats": nll_mam,
            "observed_per_row": tokens,
            "bits_per_token_arm": nll_arm / (tokens * ln2) if tokens else float("nan"),
            "bits_per_token_mam": nll_mam / (tokens * ln2) if tokens else float("nan"),
            "relative_gap": (nll_mam - nll_arm) / abs(nll_arm) if nll_arm else float("nan"),
            "mean_abs_diff_nats": float(np.abs(self.mam - self.arm).mean()),
            **correlations(self.mam, self.arm),
            "ms_per_molecule_mam": 1e3 * self.seconds_mam / self.n,
            "ms_per_molecule_arm": 1e3 * t_arm / self.n,
            "speedup": t_arm / max(self.seconds_mam, 1e-12),
        }


def correlations(a, b) -> dict[str, float]:
    """Spearman and Pearson correlation of two score vectors; NaN where undefined (fewer than
    3 rows or a constant side)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"spearman": float("nan"), "pearson": float("nan")}
    return {"spearman": float(stats.spearmanr(a, b).statistic), "pearson": float(stats.pearsonr(a, b).statistic)}


def mask_random_subsets(x: torch.Tensor, mask_id: int, fraction: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Hide each position independently with probability ``fraction`` (partial molecules)."""
    g = torch.Generator().manual_seed(seed)
    hide = torch.rand(x.shape, generator=g) < fraction
    return torch.where(hide.to(x.device), torch.full_like(x, mask_id), x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def likelihood_agreement(
    model: MaM, x: torch.Tensor, num_orders: int = 1, batch_size: int = 256, seed: int = 0, with_arm: bool = True
) -> LikelihoodAgreement:
    """Score ``x`` (complete or partial) both ways, timed side by side in one run
    (``with_arm=False``: MaM only)."""
    model.eval()
    x = model.check_input(x)
    batches = x.split(batch_size)
    model.log_marginal(batches[0][:2])  # warm-up, so neither side pays one-off costs
    _sync(model.device)
    t0 = time.perf_counter()
    mam = torch.cat([model.log_marginal(b) for b in batches])
    _sync(model.device)
    t_mam = time.perf_counter() - t0
    observed = (x != model.mask_id).sum(1).cpu().numpy()  # (N,) |S| per row
    if not with_arm:
        return LikelihoodAgreement(mam.double().cpu().numpy(), np.full(len(x), np.nan), t_mam, None, model.D, observed)
    t0 = time.perf_counter()
    arm = torch.cat([model.log_likelihood_arm(b, num_orders=num_orders, seed=seed + i) for i, b in enumerate(batches)])
    _sync(model.device)
    t_arm = time.perf_counter() - t0
    return LikelihoodAgreement(mam.double().cpu().numpy(), arm.cpu().numpy(), t_mam, t_arm, model.D, observed)


def _markdown_table(rows: dict[str, dict], columns: list[str]) -> str:
    head = "| | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"
    body = ""
    for name, r in rows.items():
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        body += f"| {name} | " + " | ".join(cells) + " |\n"
    return head + body


def evaluate_molecule_model(
    model: MaM,
    test_smiles: list[str],
    train_smiles: list[str],
    out_dir: str | Path,
    n_test: int = 1000,
    n_samples: int = 1000,
    num_orders: int = 1,
    fragment: str = "c1ccccc1",
    seed: int = 0,
    progress: bool = True,
    order="random",
    temperature: float = 1.0,
    top_p: float = 1.0,
    with_fcd: bool | None = None,
    moses_wheel: str | None = None,
) -> dict:
    """Run the whole evaluation and write ``report.md``, CSVs and figures into ``out_dir``."""
    import plotly.express as px

    from energies.properties import compute_properties
    from .chem.fcd import fcd_available
    from .mol_metrics import (
        aromatic_ring_fraction,
        canonical_set,
        drug_like_quality,
        internal_diversity,
        property_distance,
        sample_quality,
        smiles_lengths,
    )
    from .molecules import tokenizer_of

    if with_fcd is None:
        with_fcd = fcd_available()
    fcd_source = ""

    tok = tokenizer_of(model)
    if tok is None:
        raise ValueError("this model has no molecule tokenizer; `mam eval` needs a molecule model")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # 1. likelihoods on held-out molecules, complete and partial
    enc = tok.encode_filtered(test_smiles[:n_test])
    x_test = enc.ids.to(model.device)
    full = likelihood_agreement(model, x_test, num_orders, seed=seed)
    partial = likelihood_agreement(model, mask_random_subsets(x_test, model.mask_id, 0.5, seed), num_orders, seed=seed)
    lik_rows = {"test molecules": full.summary(), "partial (50% observed)": partial.summary()}
    # The AO-ARM reference is itself an estimate (a mixture over orders sampled with
    # ``num_orders``); its agreement with an independent draw of orders bounds what MaM can reach.
    arm_again = torch.cat([model.log_likelihood_arm(b, num_orders=num_orders, seed=seed + 1000 + i)
                           for i, b in enumerate(x_test.split(256))]).cpu().numpy()
    ceiling = float(stats.spearmanr(full.arm, arm_again).statistic) if full.n >= 3 else float("nan")
    pd.DataFrame(
        {"smiles": [test_smiles[i] for i in enc.kept], "log_p_mam": full.mam, "log_p_arm": full.arm}
    ).to_csv(out / "test_likelihoods.csv", index=False)
    fig = px.scatter(
        x=full.arm, y=full.mam, labels={"x": "AO-ARM log p(x) (nats)", "y": "MaM log p(x) (nats)"},
        title=f"MaM vs AO-ARM on {full.n} test molecules (Spearman {lik_rows['test molecules']['spearman']:.3f})",
    )
    fig.write_html(out / "mam_vs_arm.html", include_plotlyjs="cdn")

    # 2. samples
    t0 = time.perf_counter()
    samples = tok.decode_batch(model.sample(n_samples, order=order, temperature=temperature, top_p=top_p,
                                            seed=seed).cpu())
    t_sample = time.perf_counter() - t0
    test_ref = test_smiles[:n_samples]
    quality = sample_quality(samples, canonical_set(train_smiles))
    quality["quality"] = drug_like_quality(samples)
    quality["aromatic_ring_fraction"] = aromatic_ring_fraction(samples)
    data_stats = {
        "n": len(test_ref),
        "quality": drug_like_quality(test_ref),
        "internal_diversity": internal_diversity(test_ref),
        "aromatic_ring_fraction": aromatic_ring_fraction(test_ref),
    }
    len_s, len_t = smiles_lengths(samples), smiles_lengths(test_ref)
    quality["median_smiles_length"] = float(np.median(len_s)) if len_s else float("nan")
    data_stats["median_smiles_length"] = float(np.median(len_t))
    fcd_rows = {}
    if with_fcd:
        from .chem.fcd import fcd, reference_from_smiles, reference_from_wheel

        ref = reference_from_wheel(moses_wheel) if moses_wheel else reference_from_smiles(
            test_smiles, f"the embedded MOSES test subset ({len(test_smiles):,} molecules)")
        fcd_rows = {
            "samples": {"n": len(samples), "FCD/Test": fcd(samples, ref)},
            "training molecules (same n, floor)": {"n": n_samples, "FCD/Test": fcd(train_smiles[:n_samples], ref)},
        }
        fcd_source = ref.source
    props_s = compute_properties(samples, names=("logP", "QED", "SA", "MW", "rings"))
    props_t = compute_properties(test_ref, names=("logP", "QED", "SA", "MW", "rings"))
    props_s.to_csv(out / "samples.csv", index=False)
    dist = {p: property_distance(props_s[p], props_t[p]) for p in ("logP", "QED", "SA", "MW", "rings")}
    long = pd.concat([props_s.assign(source="MaM samples"), props_t.assign(source="MOSES test")])
    long["SMILES length"] = long["SMILES"].map(lambda s: len(s) if isinstance(s, str) else np.nan)
    for p in ("logP", "QED", "SA", "MW", "rings", "SMILES length"):
        px.histogram(long, x=p, color="source", barmode="overlay", histnorm="probability density", nbins=50).write_html(
            out / f"property_{p.replace(' ', '_')}.html", include_plotlyjs="cdn"
        )

    # 3. conditional generation from a fragment (first draw, no resampling)
    from .workflows.generate import STATUS_OK, generate_molecules

    table = generate_molecules(model, min(n_samples, 200), fragment=fragment, order=order, temperature=temperature,
                               top_p=top_p, seed=seed + 1, max_rounds=1)
    matched = float((table["status"] == STATUS_OK).mean())
    cond = {"fragment": fragment, "task": table.attrs["task"], "samples": len(table), "matched_first_draw": matched}

    result = {"likelihood": lik_rows, "arm_vs_arm_spearman": ceiling, "samples": {**quality, "seconds": t_sample},
              "test_set": data_stats, "fcd": fcd_rows, "property_w1": dist, "conditional": cond,
              "sampling": {"order": order if isinstance(order, str) else "custom", "temperature": temperature,
                           "top_p": top_p}}
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=float))
    cols = ["n", "observed_per_row", "nll_arm_nats", "nll_mam_nats", "bits_per_token_arm", "bits_per_token_mam", "relative_gap",
            "spearman", "pearson", "ms_per_molecule_mam", "ms_per_molecule_arm", "speedup"]
    pd.DataFrame(lik_rows).T.to_csv(out / "likelihood.csv")
    report = [
        "# MaM evaluation report\n",
        f"Model: D={model.D}, K={model.K}, {model.config.arch} (d_model={model.config.d_model}, "
        f"{model.config.n_layers} layers); AO-ARM with {num_orders} order(s); device {model.device}.\n",
        "## Likelihood: MaM (one pass) vs AO-ARM (D passes)\n",
        _markdown_table(lik_rows, cols),
        f"\nTarget speed-up ≥ 0.8·D = {0.8 * model.D:.0f}. Scatter: [mam_vs_arm.html](mam_vs_arm.html).\n",
        f"The AO-ARM reference is a Monte Carlo estimate over {num_orders} random order(s); two independent draws "
        f"of orders agree with each other at Spearman {ceiling:.3f} on the test molecules, the ceiling for the "
        f"MaM-vs-AO-ARM correlation above.\n",
        f"## Samples ({n_samples}; order {result['sampling']['order']}, temperature {temperature}, top-p {top_p}; "
        f"{t_sample:.1f} s)\n",
        "Quality is GenMol's: valid, unique, QED ≥ 0.6 and SA ≤ 4, over requested.\n",
        _markdown_table({"MaM samples": quality, "MOSES test": data_stats}, list(quality)),
        ("\n" + _markdown_table(fcd_rows, ["n", "FCD/Test"]) + f"\nFCD reference: {fcd_source}. FCD grows as n "
         "shrinks; MOSES reports it at 30,000 samples (CharRNN 0.073, VAE 0.099, LatentGAN 0.297, JTN-VAE 0.395, "
         "AAE 0.556, NGram 5.51).\n") if fcd_rows else "\nFCD: not computed (install the eval extra).\n",
        "\nWasserstein-1 distance of property distributions, samples vs MOSES test: "
        + ", ".join(f"{k} {v:.3f}" for k, v in dist.items())
        + " (figures: " + ", ".join(f"[{p}](property_{p}.html)" for p in dist)
        + ", [SMILES length](property_SMILES_length.html)).\n",
        "## Conditional generation\n",
        f"Fragment `{fragment}` ({cond['task']}): {cond['samples']} samples, fraction valid and containing the "
        f"fragment at the first draw (no resampling): {matched:.3f}.\n",
    ]
    (out / "report.md").write_text("\n".join(report))
    return result
