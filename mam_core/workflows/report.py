"""Writing an evaluation (:class:`mam_core.workflows.evaluation.EvalResult`) to a folder: the
Markdown report, the CSV tables, ``metrics.json`` and the Plotly figures (HTML).

Nothing here measures anything: every number comes from the result, so a report can be rewritten
(or written differently) without running the model again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluation import FCD_NOT_INSTALLED, MOLECULE_ROW, PROPERTIES, EvalResult

__all__ = ["write_report", "markdown_table", "LIKELIHOOD_COLUMNS"]

#: Columns of the likelihood table, in report order.
LIKELIHOOD_COLUMNS = [
    "n",
    "observed_per_row",
    "nll_arm_nats",
    "nll_mam_nats",
    "bits_per_token_arm",
    "bits_per_token_mam",
    "relative_gap",
    "spearman",
    "pearson",
    "nll_arm_mean_nats",
    "relative_gap_mean",
    "spearman_mean",
    "slope_mean",
    "ms_per_molecule_mam",
    "ms_per_molecule_arm",
    "speedup",
]

#: MOSES's published FCD/Test at 30,000 samples, quoted beside ours.
_MOSES_FCD = ("CharRNN 0.073, VAE 0.099, LatentGAN 0.297, JTN-VAE 0.395, AAE 0.556, NGram 5.51")


def markdown_table(rows: dict[str, dict], columns: list[str]) -> str:
    """A Markdown table with one row per entry of ``rows`` (floats to 4 significant digits)."""
    head = "| | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"
    body = ""
    for name, r in rows.items():
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        body += f"| {name} | " + " | ".join(cells) + " |\n"
    return head + body


def write_report(result: EvalResult, out_dir: str | Path) -> Path:
    """Write ``report.md``, ``metrics.json``, ``likelihood.csv``, ``test_likelihoods.csv``,
    ``samples.csv``, ``mam_vs_arm.html`` and ``property_*.html`` into ``out_dir``; returns the
    report's path."""
    import plotly.express as px

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    lik_rows = m["likelihood"]
    full = lik_rows["test molecules"]

    # tables and figures
    result.test_likelihoods.to_csv(out / "test_likelihoods.csv", index=False)
    t = result.test_likelihoods
    fig = px.scatter(
        x=t["log_p_arm"], y=t["log_p_mam"],
        labels={"x": "AO-ARM log p(x) (nats)", "y": "MaM log p(x) (nats)"},
        title=f"MaM vs AO-ARM on {full['n']} test molecules (Spearman {full['spearman']:.3f})",
    )
    fig.write_html(out / "mam_vs_arm.html", include_plotlyjs="cdn")
    result.sample_properties.to_csv(out / "samples.csv", index=False)
    long = pd.concat([result.sample_properties.assign(source="MaM samples"),
                      result.test_properties.assign(source="MOSES test")])
    long["SMILES length"] = long["SMILES"].map(lambda s: len(s) if isinstance(s, str) else np.nan)
    for p in (*PROPERTIES, "SMILES length"):
        fig = px.histogram(long, x=p, color="source", barmode="overlay",
                           histnorm="probability density", nbins=50)
        fig.write_html(out / f"property_{p.replace(' ', '_')}.html", include_plotlyjs="cdn")
    (out / "metrics.json").write_text(json.dumps(m, indent=2, default=float))
    pd.DataFrame(lik_rows).T.to_csv(out / "likelihood.csv")

    # the Markdown report
    report_path = out / "report.md"
    report_path.write_text("\n".join(_report_lines(result)))
    return report_path


def _report_lines(result: EvalResult) -> list[str]:
    m, model, settings = result.metrics, result.model, result.settings
    num_orders, n_samples = settings["num_orders"], settings["n_samples"]
    ceiling = m["arm_vs_arm_spearman"]
    mean_ceiling = m.get("arm_vs_arm_spearman_mean", float("nan"))
    quality = {k: v for k, v in m["samples"].items() if k != "seconds"}
    t_sample = m["samples"]["seconds"]
    sampling, fcd_rows, dist, cond = m["sampling"], m["fcd"], m["property_w1"], m["conditional"]
    if fcd_rows:
        fcd_text = (
            "\n" + markdown_table(fcd_rows, ["n", "FCD/Test"])
            + f"\nFCD reference: {settings['fcd_source']}. FCD grows as n shrinks; MOSES reports "
            f"it at 30,000 samples ({_MOSES_FCD}).\n"
        )
    else:
        why = settings.get("fcd_skipped") or FCD_NOT_INSTALLED
        fcd_text = f"\nFCD: not computed ({why}).\n"
    return [
        "# MaM evaluation report\n",
        f"Model: D={model['D']}, K={model['K']}, {model['arch']} (d_model={model['d_model']}, "
        f"{model['n_layers']} layers); AO-ARM with {num_orders} order(s); "
        f"device {model['device']}.\n",
        "## Likelihood: MaM (one pass) vs AO-ARM (D passes)\n",
        markdown_table(m["likelihood"], LIKELIHOOD_COLUMNS),
        f"\n`speedup` is over one AO-ARM order (D passes; `ms_per_molecule_arm` covers all "
        f"{num_orders}). Target speed-up ≥ 0.8·D = {0.8 * model['D']:.0f}. "
        "Scatter: [mam_vs_arm.html](mam_vs_arm.html).\n",
        f"The AO-ARM reference is a Monte Carlo estimate over {num_orders} random order(s); two "
        f"independent draws of orders agree with each other at Spearman {ceiling:.3f} on the test "
        "molecules, the ceiling for the MaM-vs-AO-ARM correlation above.\n",
        *_molecule_lines(m["likelihood"], settings),
        "The `_mean` columns reduce the same orders by their mean, E_σ log p(x | σ), instead of "
        "the log-mean-exp: the stage-1 bound, which self-consistency distils into the marginal. "
        "The two differ where the conditionals disagree between orders (the log-mean-exp is "
        f"higher by Jensen's inequality); two draws of orders agree at Spearman {mean_ceiling:.3f} "
        "under the mean. `slope_mean` is the least-squares slope of the MaM's log p on that mean "
        "across molecules: 1 when the marginal tells likely from unlikely molecules apart as "
        "widely as the conditionals do, below 1 when it shrinks them towards their average.\n",
        f"## Samples ({n_samples}; order {sampling['order']}, temperature "
        f"{sampling['temperature']}, top-p {sampling['top_p']}, constraint "
        f"{sampling.get('constraint', 'full')}; {t_sample:.1f} s)\n",
        "Quality is GenMol's: valid, unique, QED ≥ 0.6 and SA ≤ 4, over requested (one draw "
        "each). `quality_of_valid` is the same over the valid molecules: what the app delivers, "
        "since it draws failed rows again.\n",
        markdown_table({"MaM samples": quality, "MOSES test": m["test_set"]}, list(quality)),
        fcd_text,
        "\nWasserstein-1 distance of property distributions, samples vs MOSES test: "
        + ", ".join(f"{k} {v:.3f}" for k, v in dist.items())
        + " (figures: " + ", ".join(f"[{p}](property_{p}.html)" for p in dist)
        + ", [SMILES length](property_SMILES_length.html)).\n",
        "## Conditional generation\n",
        f"Fragment `{cond['fragment']}` ({cond['task']}): {cond['samples']} samples, fraction "
        "valid and containing the fragment at the first draw (no resampling): "
        f"{cond['matched_first_draw']:.3f}.\n",
    ]


def _molecule_lines(likelihood: dict, settings: dict) -> list[str]:
    """What the row of molecules summed over their spellings means (absent for models that
    write a molecule one way)."""
    whole = likelihood.get(MOLECULE_ROW)
    if not whole:
        return []
    one = likelihood["test molecules"]
    return [
        f"`{MOLECULE_ROW}`: this model writes a molecule's fragment blocks in any order, so "
        "p(molecule) is the sum over those strings, while `test molecules` scores one string "
        f"(the canonical order). The marginal scores up to {settings.get('spellings', '')} "
        "orders per molecule (all of them where there are no more), one pass each; each AO-ARM "
        "order scores a block order drawn for it. Summing over block orders lowers the AO-ARM "
        f"NLL from {one['nll_arm_nats']:.2f} to {whole['nll_arm_nats']:.2f} nats per molecule "
        f"and the MaM's from {one['nll_mam_nats']:.2f} to {whole['nll_mam_nats']:.2f}. Its "
        "`speedup` sets one AO-ARM order (D passes) against all the marginal's passes for the "
        "molecule, one per block order scored.\n",
    ]
