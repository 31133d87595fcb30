"""``mam sample``, ``mam score`` and ``mam eval``: using a trained model."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..chem.molecules import tokenizer_of
from ..chem.smiles_io import SmilesInputError, read_smiles_file
from ..core.model import MaM
from .common import (CLIError, add_common, add_constraint_args, constraint_arg, load_model,
                     load_token_text, parse_order_arg)

__all__ = ["add_parsers", "run_sample", "run_score", "run_eval"]


def _format_row(model: MaM, row) -> str:
    return " ".join(model.vocab.decode(row, strip_pad=False))


def run_sample(args) -> None:
    model = load_model(args)
    tok = tokenizer_of(model)
    from ..workflows.generate import recommended_sampling

    # what is not given comes from the model (stored by 'mam export')
    settings = recommended_sampling(model, args.temperature, args.top_p)
    args.temperature, args.top_p = settings["temperature"], settings["top_p"]
    order = parse_order_arg(args.order, model.D)
    t0 = time.perf_counter()
    if tok is not None and args.template is None:
        from ..chem.fragments import FragmentError
        from ..workflows.generate import STATUS_OK, generate_molecules

        try:
            table = generate_molecules(model, args.n, fragment=args.fragment, start=args.start,
                                       order=order, temperature=args.temperature,
                                       top_p=args.top_p, seed=args.seed,
                                       grammar=constraint_arg(args))
        except FragmentError as err:
            raise CLIError(str(err)) from None
        dt = time.perf_counter() - t0
        for notice in table.attrs.get("notices", []):
            print(f"note: {notice}", file=sys.stderr)
        summary = table.attrs["summary"]
        print(f"{summary['requested']} requested, {summary['valid']} valid, "
              f"{summary['matched'] if summary['matched'] is not None else '-'} matched, "
              f"{summary['unique']} unique ({dt:.2f}s)", file=sys.stderr)
        lines = [s if st == STATUS_OK else f"{s}\t# failed: {st}"
                 for s, st in zip(table["SMILES"], table["status"])]
    else:
        if args.fragment:
            raise CLIError("--fragment needs a molecule model; use --template for token models")
        template = load_token_text(args.template, model, "--template")[0] if args.template else None
        from ..chem.grammar import constraint_for
        from ..workflows.generate import constraint_mode, default_order

        if isinstance(order, str) and order == "auto":
            order = default_order(model) if tok is not None else "random"
        constraint = constraint_for(tok, constraint_mode(model, constraint_arg(args)))
        x = model.sample(args.n, order=order, template=template, temperature=args.temperature,
                         seed=args.seed, top_p=args.top_p, constraint=constraint)
        dt = time.perf_counter() - t0
        if tok is not None:
            lines = tok.decode_batch(x.cpu())
        else:
            lines = [_format_row(model, r) for r in x.cpu()]
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"wrote {len(lines)} samples to {args.out} ({dt:.2f}s)")
    else:
        print("\n".join(lines))


#: Calibrations made by this process for models that store none, by (path, modification time).
_CALIBRATIONS: dict = {}


def _score_molecules_cli(args, model: MaM) -> None:
    """One CSV row per molecule line of the input, in order (blank lines and empty table cells
    included as "empty line" rows; comments and a header line are not molecules): the outlier
    table of :mod:`mam_core.workflows.outliers`."""
    from ..chem.moses import load_moses
    from ..workflows.outliers import calibrate, calibration_of, score_table

    try:  # the one SMILES reader: lines (.smi), CSV tables, gzip; blank lines kept as rows
        smiles = read_smiles_file(args.input, keep_blank_lines=True)
    except SmilesInputError as err:
        raise CLIError(str(err)) from None
    cal = calibration_of(model)
    made_now = ""
    stale = (cal is not None and args.score == "worst_fragment"
             and "fragment_surprise" not in cal.score_stats)
    if (cal is None or stale) and args.score in ("likelihood_ratio", "length_z", "worst_fragment"):
        key = (str(args.model), Path(args.model).stat().st_mtime if args.model else 0.0)
        if key not in _CALIBRATIONS:
            _CALIBRATIONS[key] = calibrate(model, load_moses("train", limit=2000),
                                           "embedded MOSES train (first 2,000)", store=False)
        cal = _CALIBRATIONS[key]
        made_now = ("; no stored calibration, so 2,000 training molecules were scored for it "
                    "(`mam eval` stores one)")
    t0 = time.perf_counter()
    table = score_table(model, smiles, args.score, cal, bf16=False if args.float32 else None)
    dt = time.perf_counter() - t0
    table["error"] = [e if s else "empty line" for s, e in zip(smiles, table["error"])]
    if args.arm:
        from ..workflows.evaluation import likelihood_agreement

        tok = tokenizer_of(model)
        ok = [i for i, e in enumerate(table["error"]) if not e]
        arm = np.full(len(table), np.nan)
        if ok:
            ids = tok.encode_batch([smiles[i] for i in ok]).to(model.device)
            with torch.no_grad():
                scored = likelihood_agreement(model, ids, args.orders, args.batch_size,
                                              args.seed, True)
                arm[ok] = scored.arm
        table.insert(2, "log_likelihood_arm", arm)
    if args.spellings and tokenizer_of(model).many_spellings:
        from ..workflows.scoring import molecule_columns

        ok = [i for i, e in enumerate(table["error"]) if not e]
        whole, counts, _ = molecule_columns(model, smiles, ok, args.spellings, args.batch_size,
                                            args.seed)
        table.insert(2, "log_p_molecule", whole)
        if "block_orders" not in table:
            table.insert(3, "block_orders", counts)
    table = table.drop(columns=["n_tokens"])
    if args.out:
        table.to_csv(args.out, index=False, float_format="%.6f")
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.6f")
    bad = int((table["error"] != "").sum())
    print(f"scored {len(table) - bad} of {len(table)} lines in {dt:.2f}s ({args.score} score; "
          f"{bad} out of domain, ranked most atypical with the reason in 'error'{made_now})",
          file=sys.stderr)


def run_score(args) -> None:
    model = load_model(args)
    if tokenizer_of(model) is not None:
        _score_molecules_cli(args, model)
        return
    x = load_token_text(args.input, model, args.input)
    if x.shape[1] != model.D:
        raise CLIError(f"{args.input}: sequences have {x.shape[1]} tokens; the model needs "
                       f"D={model.D}")
    from ..workflows.evaluation import (  # pandas/scipy only when scoring
        likelihood_agreement, speedup_over_one_order)

    with torch.no_grad():
        scored = likelihood_agreement(model, x.to(model.device), args.orders, args.batch_size,
                                      args.seed, args.arm)
    lm, t_mam = scored.mam, scored.seconds_mam
    arm, t_arm = (scored.arm, scored.seconds_arm) if args.arm else (None, None)
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    w = csv.writer(out)
    header = ["row", "observed", "log_marginal_mam"]
    w.writerow(header + (["log_likelihood_arm"] if arm is not None else []))
    for i in range(x.shape[0]):
        row = [i, int((x[i] != model.mask_id).sum()), f"{float(lm[i]):.6f}"]
        if arm is not None:
            row.append(f"{float(arm[i]):.6f}")
        w.writerow(row)
    if args.out:
        out.close()
    msg = f"scored {x.shape[0]} rows: MaM {t_mam:.3f}s (one pass)"
    if arm is not None:
        msg += (f", AO-ARM {t_arm:.3f}s ({args.orders} order(s), D={model.D} passes each), "
                f"speed-up over one order "
                f"{speedup_over_one_order(t_arm, args.orders, t_mam):.1f}x")
    print(msg, file=sys.stderr)


def run_eval(args) -> None:
    from ..chem.moses import load_moses
    from ..workflows.evaluation import MOLECULE_ROW, evaluate_molecule_model

    model = load_model(args)
    order = parse_order_arg(args.order, model.D)
    result = evaluate_molecule_model(
        model, load_moses("test"), load_moses("train"), args.out, args.n_test, args.n_samples,
        args.orders, args.fragment, args.seed, order=order, temperature=args.temperature,
        top_p=args.top_p, with_fcd=False if args.no_fcd else None, moses_wheel=args.moses_wheel,
        grammar=constraint_arg(args), spellings=args.spellings,
    )
    full = result["likelihood"]["test molecules"]
    fcd_line = ""
    if result["fcd"]:
        fcd_line = f"; FCD/Test {result['fcd']['samples']['FCD/Test']:.3f}"
    print(
        f"report: {Path(args.out) / 'report.md'}\nNLL AO-ARM {full['nll_arm_nats']:.2f} vs MaM "
        f"{full['nll_mam_nats']:.2f} nats; Spearman {full['spearman']:.3f}, Pearson "
        f"{full['pearson']:.3f} (mean over orders: {full['nll_arm_mean_nats']:.2f} nats, Spearman "
        f"{full['spearman_mean']:.3f}, slope {full['slope_mean']:.2f}); speed-up "
        f"{full['speedup']:.1f}x; validity "
        f"{result['samples']['validity']:.3f}, uniqueness {result['samples']['uniqueness']:.3f}, "
        f"novelty {result['samples']['novelty']:.3f}, quality "
        f"{result['samples']['quality']:.3f}{fcd_line}"
    )
    whole = result["likelihood"].get(MOLECULE_ROW)
    if whole:
        print(f"{MOLECULE_ROW}: NLL AO-ARM {whole['nll_arm_nats']:.2f} vs MaM "
              f"{whole['nll_mam_nats']:.2f} nats; Spearman {whole['spearman']:.3f}")


def add_parsers(sub) -> None:
    """The inference subcommands (sample, score, eval)."""
    p = sub.add_parser("sample", help="any-order sampling, optionally from a template")
    p.add_argument("--model", help="checkpoint file (default: the shipped molecule model)")
    p.add_argument("-n", type=int, default=10, help="number of samples")
    p.add_argument("--template", help="ids with ? for positions to sample, inline or a file")
    p.add_argument("--fragment",
                   help="molecule models: SMILES with attachment points ([*], [1*]) kept in every "
                   "molecule; two dot-separated pieces design a linker; none grows the fragment "
                   "anywhere")
    p.add_argument("--start", type=int, default=0,
                   help="SELFIES/SMILES models: position of the fragment's first token")
    p.add_argument("--order", dest="order", default="auto",
                   help="auto (left to right for SMILES / fragment blocks, random for SELFIES), "
                        "random, l2r, r2l, confidence (most certain position first), or "
                        "positions like '3 0 1 2'")
    add_constraint_args(p)
    p.add_argument("--temperature", type=float,
                   help="default: the model's stored setting (mam export), else 1.0")
    p.add_argument("--top-p", type=float,
                   help="nucleus sampling: keep tokens covering this mass (default: the model's "
                        "stored setting, else 1.0)")
    p.add_argument("--out", help="write samples here instead of stdout")
    add_common(p)
    p.set_defaults(func=run_sample)

    p = sub.add_parser("score",
                       help="log p(x_S) of each input row in one pass (and optionally AO-ARM)")
    p.add_argument("--model", help="checkpoint file (default: the shipped molecule model)")
    p.add_argument("--input", required=True,
                   help="molecule models: one SMILES per line or a CSV with a SMILES column; "
                   "token models: one row of ids per line (? = masked)")
    p.add_argument("--arm", action="store_true",
                   help="also compute the exact AO-ARM value (D passes)")
    p.add_argument("--float32", action="store_true",
                   help="molecules: score in float32 throughout (default: bfloat16 trunk where "
                        "it is measured faster on this machine, a few hundredths of a nat apart)")
    from ..workflows.outliers import DEFAULT_SCORE, SCORE_LABELS, SCORES

    p.add_argument("--score", default=DEFAULT_SCORE, choices=SCORES,
                   help=f"molecules: the outlier score (default {DEFAULT_SCORE}; see "
                        "bench/outlier_screening.py): "
                        + "; ".join(f"{k}: {v}" for k, v in SCORE_LABELS.items()))
    p.add_argument("--orders", type=int, default=1, help="random orders for --arm")
    p.add_argument("--spellings", type=int, default=0,
                   help="fragment-block models: add log_p_molecule, the marginal summed over up "
                        "to this many of the molecule's block orders (one pass each; the "
                        "probability of the molecule rather than of one string)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", help="CSV output (default stdout)")
    add_common(p)
    p.set_defaults(func=run_score)

    p = sub.add_parser("eval",
                       help="molecule models: MaM vs AO-ARM likelihoods and sample quality report")
    p.add_argument("--model", help="checkpoint file (default: the shipped molecule model)")
    p.add_argument("--out", required=True, help="report folder (report.md, CSVs, figures)")
    p.add_argument("--n-test", type=int, default=1000, help="held-out MOSES molecules to score")
    p.add_argument("--n-samples", type=int, default=1000, help="molecules to sample")
    p.add_argument("--orders", type=int, default=1, help="random orders for the AO-ARM reference")
    p.add_argument("--fragment", default="[*]c1ccccc1",
                   help="fragment for the conditional-generation check")
    p.add_argument("--order", default="auto",
                   help="sampling order: auto (the app's), random, l2r, r2l, confidence")
    add_constraint_args(p)
    p.add_argument("--temperature", type=float,
                   help="default: the model's stored setting (mam export), else 1.0")
    p.add_argument("--top-p", type=float,
                   help="default: the model's stored setting (mam export), else 1.0")
    p.add_argument("--spellings", type=int, default=16,
                   help="fragment-block models: also score log p(molecule), the sum over the "
                        "molecule's block orders, from up to this many of them (0: leave out)")
    p.add_argument("--no-fcd", action="store_true",
                   help="skip the Fréchet ChemNet Distance (slow on CPU)")
    p.add_argument("--moses-wheel",
                   help="molsets-0.3.1 wheel: use MOSES's own test statistics for FCD")
    add_common(p)
    p.set_defaults(func=run_eval)

