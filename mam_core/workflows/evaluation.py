"""Evaluation of a molecule MaM: one-pass marginals against the model's own AO-ARM, and the
quality of its samples.

:func:`compute_eval` measures and returns an :class:`EvalResult` (numbers and tables, no files);
:func:`mam_core.workflows.report.write_report` turns one into the Markdown report, CSV tables and
Plotly figures that ``mam eval`` writes; :func:`evaluate_molecule_model` does both.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..core.likelihood import log_likelihood_arm_per_order, log_mean_exp, log_sum_over_spellings
from ..core.model import MaM

__all__ = [
    "EvalResult",
    "LikelihoodAgreement",
    "compute_eval",
    "correlations",
    "evaluate_molecule_model",
    "likelihood_agreement",
    "mask_random_subsets",
    "molecule_likelihoods",
    "MOLECULE_ROW",
    "SPELLINGS",
]

#: Spellings (fragment orders) the marginal scores per molecule for ``log p(molecule)``.
SPELLINGS = 16
#: The likelihood table's row for molecules summed over their spellings.
MOLECULE_ROW = "molecules (every fragment order)"

#: Why a report has no FCD when ``fcd_torch`` is missing.
FCD_NOT_INSTALLED = "fcd_torch is not installed; install the eval extra"

#: Properties compared between samples and the test set.
PROPERTIES = ("logP", "QED", "SA", "MW", "rings")


@dataclass
class LikelihoodAgreement:
    """MaM (one pass) vs AO-ARM (exact, D passes) on the same inputs.

    The AO-ARM is reduced over its random orders two ways: ``arm``, the log-mean-exp (the
    mixture over orders, what ``log p`` of an AO-ARM means), and ``arm_mean``, the mean of the
    per-order log-likelihoods (the stage-1 bound, the quantity self-consistency distils into
    the marginal).  Where the conditionals disagree between orders the first exceeds the second
    (Jensen), and a marginal trained by self-consistency sits near the second.
    """

    mam: np.ndarray  # (N,) log p in nats, one pass
    arm: np.ndarray  # (N,) log p in nats, AO-ARM log-mean-exp over orders (NaN when not computed)
    seconds_mam: float
    seconds_arm: float | None  # None when the AO-ARM was not computed
    D: int
    observed: np.ndarray | None = None  # (N,) observed positions |S| per row; None: all D
    arm_mean: np.ndarray | None = None  # (N,) mean over the same orders; None: not computed
    num_orders: int = 1  # orders the AO-ARM was run for: seconds_arm covers all of them

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
        by D: a half-masked molecule's log p(x_S) covers half the tokens.  The speed-up is over
        one AO-ARM order (D passes), whatever number of orders the reference averaged.
        """
        ln2 = math.log(2)
        nll_mam, nll_arm = -float(self.mam.mean()), -float(self.arm.mean())
        tokens = self.tokens_per_row
        t_arm = float("nan") if self.seconds_arm is None else self.seconds_arm
        mean = self.arm if self.arm_mean is None else self.arm_mean
        nll_mean = -float(mean.mean())
        return {
            "n": self.n,
            "nll_arm_nats": nll_arm,
            "nll_mam_nats": nll_mam,
            "nll_arm_mean_nats": nll_mean,
            "observed_per_row": tokens,
            "bits_per_token_arm": nll_arm / (tokens * ln2) if tokens else float("nan"),
            "bits_per_token_mam": nll_mam / (tokens * ln2) if tokens else float("nan"),
            "relative_gap": (nll_mam - nll_arm) / abs(nll_arm) if nll_arm else float("nan"),
            "mean_abs_diff_nats": float(np.abs(self.mam - self.arm).mean()),
            **correlations(self.mam, self.arm),
            "relative_gap_mean": (nll_mam - nll_mean) / abs(nll_mean) if nll_mean else float("nan"),
            "spearman_mean": correlations(self.mam, mean)["spearman"],
            "slope_mean": spread_slope(self.mam, mean),
            "ms_per_molecule_mam": 1e3 * self.seconds_mam / self.n,
            "ms_per_molecule_arm": 1e3 * t_arm / self.n,
            "speedup": speedup_over_one_order(t_arm, self.num_orders, self.seconds_mam),
        }


def speedup_over_one_order(seconds_arm: float, num_orders: int, seconds_mam: float) -> float:
    """Time of one AO-ARM order (D passes) over the one-pass marginal's, on the same rows:
    ``seconds_arm`` covers all ``num_orders`` orders the reference averaged."""
    return seconds_arm / max(num_orders, 1) / max(seconds_mam, 1e-12)


def spread_slope(mam, arm) -> float:
    """Least-squares slope of the MaM's log p on the AO-ARM's across rows: 1 when the marginal
    separates likely from unlikely molecules as much as the conditionals do, below 1 when it
    shrinks them towards their mean (what a marginal that cannot resolve each step does under a
    squared-error objective: a rank correlation does not show it).  NaN for fewer than 3 rows
    or a constant AO-ARM."""
    mam, arm = np.asarray(mam, dtype=float), np.asarray(arm, dtype=float)
    ok = np.isfinite(mam) & np.isfinite(arm)
    mam, arm = mam[ok], arm[ok]
    if len(arm) < 3 or np.ptp(arm) == 0:
        return float("nan")
    a = arm - arm.mean()
    return float((a * (mam - mam.mean())).sum() / (a * a).sum())


def correlations(a, b) -> dict[str, float]:
    """Spearman and Pearson correlation of two score vectors; NaN where undefined (fewer than
    3 rows or a constant side)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"spearman": float("nan"), "pearson": float("nan")}
    return {"spearman": float(stats.spearmanr(a, b).statistic),
            "pearson": float(stats.pearsonr(a, b).statistic)}


def mask_random_subsets(x: torch.Tensor, mask_id: int, fraction: float = 0.5,
                        seed: int = 0) -> torch.Tensor:
    """Hide each position independently with probability ``fraction`` (partial molecules)."""
    g = torch.Generator().manual_seed(seed)
    hide = torch.rand(x.shape, generator=g) < fraction
    return torch.where(hide.to(x.device), torch.full_like(x, mask_id), x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def likelihood_agreement(
    model: MaM, x: torch.Tensor, num_orders: int = 1, batch_size: int = 256, seed: int = 0,
    with_arm: bool = True
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
        return LikelihoodAgreement(mam.double().cpu().numpy(), np.full(len(x), np.nan), t_mam, None,
                                   model.D, observed)
    t0 = time.perf_counter()
    per_order = torch.cat([
        log_likelihood_arm_per_order(model, b, num_orders=num_orders, seed=seed + i)
        for i, b in enumerate(batches)
    ], dim=1)  # (M, N)
    _sync(model.device)
    t_arm = time.perf_counter() - t0
    return LikelihoodAgreement(mam.double().cpu().numpy(), log_mean_exp(per_order).cpu().numpy(),
                               t_mam, t_arm, model.D, observed,
                               arm_mean=per_order.mean(dim=0).cpu().numpy(),
                               num_orders=num_orders)


@torch.no_grad()
def molecule_likelihoods(
    model: MaM, smiles: list[str], spellings: int = SPELLINGS, num_orders: int = 1,
    batch_size: int = 256, seed: int = 0, with_arm: bool = True, bf16: bool = False,
) -> tuple[LikelihoodAgreement, list[int], np.ndarray]:
    """``log p(molecule)``, summed over the spellings the model writes a molecule in (its
    fragment blocks in every order, for a fragment-block model), both ways, timed side by side.

    The marginal scores up to ``spellings`` of them per molecule, one pass each
    (:func:`~mam_core.core.likelihood.log_sum_over_spellings`).  The AO-ARM treats the spelling
    as one more thing its orders choose: each of its ``num_orders`` orders scores a spelling
    drawn for it (D passes), so it costs what scoring one spelling costs.  Returns the
    agreement, the input indices of the molecules scored, and their spelling counts.  ``bf16``
    runs the marginal's trunk in bfloat16 (:meth:`MaM.log_marginal`; for the app's tables).
    """
    from ..chem.molecules import tokenizer_of

    tok = tokenizer_of(model)
    if tok is None:
        raise ValueError("this model has no molecule tokenizer")
    model.eval()
    many = tok.encode_spellings(smiles, spellings, seed)
    x = many.ids.to(model.device)
    group = many.group.to(model.device)
    count = many.count.to(model.device)
    model.log_marginal(x[:2], bf16=bf16)  # warm-up
    _sync(model.device)
    t0 = time.perf_counter()
    mam = log_sum_over_spellings(
        torch.cat([model.log_marginal(b, bf16=bf16) for b in x.split(batch_size)]), group, count)
    _sync(model.device)
    t_mam = time.perf_counter() - t0
    arm = arm_mean = np.full(len(many.kept), np.nan)
    t_arm = None
    if with_arm:
        drawn = tok.encode_spellings([smiles[i] for i in many.kept], num_orders, seed + 1)
        # each molecule's drawn spellings repeated to at least num_orders rows, equally often
        per = drawn.group.bincount(minlength=len(many.kept))
        reps = (-(-num_orders // per))[drawn.group]  # ceil(num_orders / spellings drawn)
        rows_x = drawn.ids.repeat_interleave(reps, dim=0).to(model.device)
        rows_g = drawn.group.repeat_interleave(reps).to(model.device)
        t0 = time.perf_counter()
        lp = torch.cat([log_likelihood_arm_per_order(model, b, 1, seed=seed + i)[0]
                        for i, b in enumerate(rows_x.split(batch_size))])
        _sync(model.device)
        t_arm = time.perf_counter() - t0
        arm = log_sum_over_spellings(lp, rows_g, count).cpu().numpy()
        arm_mean = log_sum_over_spellings(lp, rows_g, count, reduce="mean").cpu().numpy()
    agreement = LikelihoodAgreement(mam.cpu().numpy(), arm, t_mam, t_arm, model.D,
                                    arm_mean=arm_mean, num_orders=num_orders)
    return agreement, many.kept, many.count.numpy()


@dataclass
class EvalResult:
    """What :func:`compute_eval` measured; :func:`mam_core.workflows.report.write_report` writes it.

    Attributes:
        metrics: the numbers, as ``metrics.json`` holds them: ``likelihood`` (per input kind, see
            :meth:`LikelihoodAgreement.summary`), ``arm_vs_arm_spearman`` and
            ``arm_vs_arm_spearman_mean`` (two draws of orders, each reduction), ``samples``,
            ``test_set``, ``fcd``, ``property_w1``, ``conditional`` and ``sampling``.
        test_likelihoods: one row per scored test molecule: ``smiles``, ``log_p_mam``,
            ``log_p_arm`` (log-mean-exp over orders) and ``log_p_arm_mean`` (mean over them).
        sample_properties: the samples' properties (``SMILES`` and :data:`PROPERTIES`).
        test_properties: the same for the test molecules they are compared with.
        model: what the report says about the model: ``D``, ``K``, ``arch``, ``d_model``,
            ``n_layers``, ``device``.
        settings: ``num_orders``, ``n_samples``, ``fragment``, ``fcd_source``, ``fcd_skipped``
            (why FCD was not computed; empty when it was).
    """

    metrics: dict
    test_likelihoods: pd.DataFrame
    sample_properties: pd.DataFrame
    test_properties: pd.DataFrame
    model: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def compute_eval(
    model: MaM,
    test_smiles: list[str],
    train_smiles: list[str],
    n_test: int = 1000,
    n_samples: int = 1000,
    num_orders: int = 1,
    fragment: str = "c1ccccc1",
    seed: int = 0,
    order="auto",
    temperature: float | None = None,
    top_p: float | None = None,
    with_fcd: bool | None = None,
    moses_wheel: str | None = None,
    grammar: bool | str = "auto",
    spellings: int = SPELLINGS,
) -> EvalResult:
    """Score held-out molecules both ways, sample, and measure the samples (no files written).

    Args:
        test_smiles: held-out molecules (the first ``n_test`` are scored; the first
            ``n_samples`` are the reference the samples are compared with).
        train_smiles: training molecules (novelty; the FCD floor).
        num_orders: random orders of the AO-ARM reference.
        fragment: SMILES of the conditional-generation check.
        order, temperature, top_p: sampling settings (``auto`` / ``None``: the app's order and
            the model's stored settings, :func:`~mam_core.workflows.generate.recommended_sampling`,
            so the report measures the molecules a user gets).
        grammar: how SMILES / fragment-block samples are constrained
            (:func:`~mam_core.workflows.generate.constraint_mode`; ``auto``: as the app
            draws them).
        with_fcd: compute the Fréchet ChemNet Distance (default: when ``fcd_torch`` is present).
        moses_wheel: the MOSES wheel, for FCD against MOSES's own test statistics.
        spellings: for models that write a molecule several ways (fragment blocks in any
            order), also score ``log p(molecule)`` over up to this many of them per molecule
            (:func:`molecule_likelihoods`); ``0`` leaves it out.

    Raises:
        ValueError: the model has no molecule tokenizer.
    """
    from ..chem.fcd import fcd_available
    from ..chem.metrics import (
        aromatic_ring_fraction,
        canonical_set,
        drug_like_quality,
        internal_diversity,
        property_distance,
        sample_quality,
        smiles_lengths,
    )
    from ..chem.molecules import tokenizer_of
    from ..chem.properties import compute_properties, mol_from_smiles
    from ..chem.grammar import constraint_for
    from .generate import (STATUS_OK, constraint_mode, default_order, generate_molecules,
                           recommended_sampling)

    # asked for explicitly, FCD fails with the install hint rather than being left out
    fcd_skipped = ("turned off" if with_fcd is False else
                   FCD_NOT_INSTALLED if with_fcd is None and not fcd_available() else "")
    with_fcd = not fcd_skipped
    tok = tokenizer_of(model)
    if tok is None:
        raise ValueError("this model has no molecule tokenizer; `mam eval` needs a molecule model")

    # 1. likelihoods on held-out molecules, complete and partial
    enc = tok.encode_filtered(test_smiles[:n_test])
    x_test = enc.ids.to(model.device)
    full = likelihood_agreement(model, x_test, num_orders, seed=seed)
    partial = likelihood_agreement(
        model, mask_random_subsets(x_test, model.mask_id, 0.5, seed), num_orders, seed=seed
    )
    lik_rows = {"test molecules": full.summary(), "partial (50% observed)": partial.summary()}
    # The AO-ARM reference is itself an estimate (a mixture over orders sampled with
    # ``num_orders``); its agreement with an independent draw of orders bounds what MaM can reach.
    again = torch.cat([
        log_likelihood_arm_per_order(model, b, num_orders=num_orders, seed=seed + 1000 + i)
        for i, b in enumerate(x_test.split(256))
    ], dim=1)  # (M, N)
    ceiling = correlations(full.arm, log_mean_exp(again).cpu().numpy())["spearman"]
    ceiling_mean = correlations(full.arm_mean, again.mean(dim=0).cpu().numpy())["spearman"]
    test_likelihoods = pd.DataFrame(
        {"smiles": [test_smiles[i] for i in enc.kept], "log_p_mam": full.mam, "log_p_arm": full.arm,
         "log_p_arm_mean": full.arm_mean}
    )
    # A model that writes a molecule several ways (fragment blocks in any order) gives the
    # molecule the sum of their probabilities: one string's log p understates it.
    if spellings:
        scored = [test_smiles[i] for i in enc.kept]
        whole, kept, counts = molecule_likelihoods(model, scored, spellings, num_orders,
                                                   seed=seed)
        if counts.max(initial=1) > 1:
            lik_rows[MOLECULE_ROW] = whole.summary()
            for name, values in (("log_p_mam_molecule", whole.mam),
                                 ("log_p_arm_molecule", whole.arm), ("block_orders", counts)):
                column = np.full(len(scored), np.nan)
                column[kept] = values
                test_likelihoods[name] = column

    # 2. samples
    settings = recommended_sampling(model, temperature, top_p)
    temperature, top_p = settings["temperature"], settings["top_p"]
    t0 = time.perf_counter()
    if isinstance(order, str) and order == "auto":
        order = default_order(model)
    mode = constraint_mode(model, grammar)
    constraint = constraint_for(tok, mode)
    x = model.sample(n_samples, order=order, temperature=temperature, top_p=top_p, seed=seed,
                     constraint=constraint)
    samples = tok.decode_batch(x.cpu())
    t_sample = time.perf_counter() - t0
    test_ref = test_smiles[:n_samples]
    quality = sample_quality(samples, canonical_set(train_smiles))
    quality["quality"] = drug_like_quality(samples)
    # what drawing failures again delivers: redrawn rows are fresh samples from the same
    # distribution, so the molecules delivered are distributed as the valid ones here
    valid = [s for s in samples if mol_from_smiles(s) is not None]
    quality["quality_of_valid"] = drug_like_quality(valid) if valid else float("nan")
    quality["aromatic_ring_fraction"] = aromatic_ring_fraction(samples)
    data_stats = {
        "n": len(test_ref),
        "quality": drug_like_quality(test_ref),
        "quality_of_valid": drug_like_quality(test_ref),
        "internal_diversity": internal_diversity(test_ref),
        "aromatic_ring_fraction": aromatic_ring_fraction(test_ref),
    }
    len_s, len_t = smiles_lengths(samples), smiles_lengths(test_ref)
    quality["median_smiles_length"] = float(np.median(len_s)) if len_s else float("nan")
    data_stats["median_smiles_length"] = float(np.median(len_t))
    fcd_rows, fcd_source = {}, ""
    if with_fcd:
        from ..chem.fcd import fcd, reference_from_smiles, reference_from_wheel

        ref = reference_from_wheel(moses_wheel) if moses_wheel else reference_from_smiles(
            test_smiles, f"the embedded MOSES test subset ({len(test_smiles):,} molecules)")
        fcd_rows = {
            "samples": {"n": len(samples), "FCD/Test": fcd(samples, ref)},
            "training molecules (same n, floor)": {
                "n": n_samples, "FCD/Test": fcd(train_smiles[:n_samples], ref)
            },
        }
        fcd_source = ref.source
    props_s = compute_properties(samples, names=PROPERTIES)
    props_t = compute_properties(test_ref, names=PROPERTIES)
    dist = {p: property_distance(props_s[p], props_t[p]) for p in PROPERTIES}

    # 3. conditional generation from a fragment (first draw, no resampling)
    table = generate_molecules(model, min(n_samples, 200), fragment=fragment, order=order,
                               temperature=temperature, top_p=top_p, seed=seed + 1, max_rounds=1,
                               grammar=mode)
    matched = float((table["status"] == STATUS_OK).mean())
    cond = {"fragment": fragment, "task": table.attrs["task"], "samples": len(table),
            "matched_first_draw": matched}

    metrics = {
        "likelihood": lik_rows,
        "arm_vs_arm_spearman": ceiling,
        "arm_vs_arm_spearman_mean": ceiling_mean,
        "samples": {**quality, "seconds": t_sample},
        "test_set": data_stats,
        "fcd": fcd_rows,
        "property_w1": dist,
        "conditional": cond,
        "sampling": {"order": order if isinstance(order, str) else "custom",
                     "temperature": temperature, "top_p": top_p,
                     "constraint": mode if constraint is not None else "off"},
    }
    c = model.config
    return EvalResult(
        metrics=metrics,
        test_likelihoods=test_likelihoods,
        sample_properties=props_s,
        test_properties=props_t,
        model={"D": model.D, "K": model.K, "arch": c.arch, "d_model": c.d_model,
               "n_layers": c.n_layers, "device": str(model.device)},
        settings={"num_orders": num_orders, "n_samples": n_samples, "fragment": fragment,
                  "spellings": spellings,
                  "fcd_source": fcd_source, "fcd_skipped": fcd_skipped},
    )


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
    order="auto",
    temperature: float | None = None,
    top_p: float | None = None,
    with_fcd: bool | None = None,
    moses_wheel: str | None = None,
    grammar: bool | str = "auto",
    spellings: int = SPELLINGS,
) -> dict:
    """Run the whole evaluation and write ``report.md``, CSVs and figures into ``out_dir``.

    :func:`compute_eval` then :func:`mam_core.workflows.report.write_report`; returns the
    metrics (what ``metrics.json`` holds).
    """
    from .report import write_report

    Path(out_dir).mkdir(parents=True, exist_ok=True)  # fail before the work, not after
    result = compute_eval(model, test_smiles, train_smiles, n_test, n_samples, num_orders,
                          fragment, seed, order, temperature, top_p, with_fcd, moses_wheel,
                          grammar, spellings)
    write_report(result, out_dir)
    return result.metrics
