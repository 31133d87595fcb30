"""Two or more `mam eval` reports side by side, against the default model's targets.

A candidate model replaces the shipped one only where its evaluation is better; this prints the
numbers that decide it in one table (markdown), each row with its target and which report is
best on it.

    python bench/compare_evals.py runs/eval_shipped runs/eval_candidate
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# (label, path into metrics.json, target, better: "high" | "low" | "low_abs" (nearest zero) |
#  "near_test" (nearest the test set's value))
ROWS = [
    ("validity (first draw)", ("samples", "validity"), "", "high"),
    ("uniqueness", ("samples", "uniqueness"), "≥ 0.99", "high"),
    ("novelty", ("samples", "novelty"), "≥ 0.80", "high"),
    ("internal diversity", ("samples", "internal_diversity"), "within 0.03 of the test set's",
     "near_test"),
    ("quality, one draw", ("samples", "quality"), "", "high"),
    ("quality delivered", ("samples", "quality_of_valid"), "≥ 0.85", "high"),
    ("aromatic-ring fraction", ("samples", "aromatic_ring_fraction"), "the test set's",
     "near_test"),
    ("FCD/Test", ("fcd", "samples", "FCD/Test"), "≤ 0.3 at 30,000", "low"),
    ("AO-ARM NLL (nats / string)", ("likelihood", "test molecules", "nll_arm_nats"), "", "low"),
    ("MaM NLL (nats / string)", ("likelihood", "test molecules", "nll_mam_nats"), "", "low"),
    ("AO-ARM NLL (nats / molecule)",
     ("likelihood", "molecules (every fragment order)", "nll_arm_nats"), "≤ 30", "low"),
    ("MaM vs AO-ARM gap", ("likelihood", "test molecules", "relative_gap"), "≤ 1 %", "low_abs"),
    ("MaM vs AO-ARM Spearman", ("likelihood", "test molecules", "spearman"), "≥ 0.98", "high"),
    ("same, under the mean over orders", ("likelihood", "test molecules", "spearman_mean"), "",
     "high"),
    ("half observed: gap", ("likelihood", "partial (50% observed)", "relative_gap"), "≤ 1 %",
     "low_abs"),
    ("half observed: Spearman", ("likelihood", "partial (50% observed)", "spearman"), "≥ 0.98",
     "high"),
    ("AO-ARM vs AO-ARM Spearman (ceiling)", ("arm_vs_arm_spearman",), "", "high"),
    ("speed-up of one-pass marginals", ("likelihood", "test molecules", "speedup"), "≥ 0.8·D",
     "high"),
]
TEST_SET = {"internal diversity": ("test_set", "internal_diversity"),
            "aromatic-ring fraction": ("test_set", "aromatic_ring_fraction")}


def lookup(metrics: dict, path: tuple[str, ...]):
    value = metrics
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) else None


def best_of(values: list, better: str, reference) -> int | None:
    """Index of the best value (``None`` when fewer than two reports have one)."""
    have = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(have) < 2:
        return None
    if better == "near_test":
        if reference is None:
            return None
        key = lambda iv: abs(iv[1] - reference)  # noqa: E731
    elif better == "low_abs":
        key = lambda iv: abs(iv[1])  # noqa: E731
    elif better == "low":
        key = lambda iv: iv[1]  # noqa: E731
    else:
        key = lambda iv: -iv[1]  # noqa: E731
    return min(have, key=key)[0]


def table(reports: dict[str, dict]) -> str:
    names = list(reports)
    lines = ["| | " + " | ".join(names) + " | target | best |",
             "|---|" + "---|" * len(names) + "---|---|"]
    for label, path, target, better in ROWS:
        values = [lookup(reports[n], path) for n in names]
        if all(v is None for v in values):
            continue
        reference = None
        if label in TEST_SET:
            refs = [lookup(reports[n], TEST_SET[label]) for n in names]
            reference = next((r for r in refs if r is not None), None)
            target = f"{target} ({reference:.3f})" if reference is not None else target
        best = best_of(values, better, reference)
        cells = ["—" if v is None else f"{v:.4g}" for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} | "
                     f"{names[best] if best is not None else ''} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", help="`mam eval --out` folders (or their metrics.json)")
    args = p.parse_args()
    reports = {}
    for given in args.reports:
        path = Path(given)
        path = path / "metrics.json" if path.is_dir() else path
        if not path.exists():
            p.error(f"{path}: no metrics.json (run `mam eval --out {given}` first)")
        reports[path.parent.name] = json.loads(path.read_text())
    print(table(reports))
    fcd_n = {lookup(m, ("fcd", "samples", "n")) for m in reports.values()} - {None}
    if len(fcd_n) > 1:
        print(f"\nFCD computed at different sample counts ({sorted(fcd_n)}): compare it only "
              "at the same n.")
    print("\nThe AO-ARM reference is an estimate over the orders `mam eval --orders` drew: its "
          "NLL, the Spearman ceiling and the speed-up compare only between reports with the same "
          "--orders.")


if __name__ == "__main__":
    main()
