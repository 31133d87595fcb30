"""Learning curves that say when to stop: held-out NLL and sample quality during training.

The training loss is a one-sample estimate on training molecules; what matters is how the
model does on molecules it never saw and what its samples look like.  :func:`molecule_monitor`
returns an ``on_log`` callback that, every ``every`` steps, adds to the history record:

* ``heldout_nll`` — the AO-ARM objective (nats per molecule, an upper bound on the NLL) on fixed
  held-out molecules with fixed orders and cuts, so successive values are comparable;
* ``heldout_nll_l2r`` — where the app samples left to right: the exact NLL of the first
  ``n_ordered`` held-out molecules in that order, the distribution the samples come from (a
  run that trains prefix contexts can lower it while the any-order bound rises);
* ``validity``, ``uniqueness``, ``quality`` — of ``n_samples`` fresh samples drawn as the app
  draws them (the model's default order and stored temperature and top-p, with the syntax
  constraint for SMILES and fragment blocks; quality: valid, unique, QED >= 0.6 and SA <= 4,
  over requested).

:func:`training_curves` lays a model's whole training history (every stage it went through) out
on one step axis, for the figure that shows how it got where it is.
"""

from __future__ import annotations

import logging
from typing import Callable

import pandas as pd
import torch

from ..core.likelihood import ao_arm_bound, log_likelihood_arm_given_order
from ..core.model import MaM
from ..core.orders import make_orders
from ..training.loop import shown_metrics

__all__ = ["CURVE_METRICS", "molecule_monitor", "stage_table", "training_curves"]

log = logging.getLogger(__name__)


def molecule_monitor(
    model: MaM, heldout: torch.Tensor, every: int, n_samples: int = 128, order: str = "auto",
    seed: int = 0, n_ordered: int = 256
) -> Callable[[dict], None]:
    """An ``on_log`` callback adding held-out NLL and sample quality to every ``every``-th record.

    Args:
        heldout: ``(N, D)`` ids of held-out molecules.
    """
    from ..chem.grammar import grammar_for
    from ..chem.metrics import drug_like_quality, uniqueness, validity
    from ..chem.molecules import tokenizer_of
    from .generate import default_order, recommended_sampling

    tok = tokenizer_of(model)
    if order == "auto":
        order = default_order(model) if tok is not None else "random"

    def on_log(rec: dict) -> None:
        step = int(rec.get("step", 0))
        if every <= 0 or step % every:
            return
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                rec["heldout_nll"] = ao_arm_bound(model, heldout, seed=seed)
                if order == "l2r" and n_ordered:
                    x = heldout[:n_ordered].to(model.device)
                    l2r = make_orders("l2r", len(x), model.D, model.device)
                    rec["heldout_nll_l2r"] = -float(
                        log_likelihood_arm_given_order(model, x, l2r).mean())
                if tok is not None and n_samples:
                    x = model.sample(n_samples, order=order, seed=seed + step,
                                     constraint=grammar_for(tok), **recommended_sampling(model))
                    smiles = tok.decode_batch(x.cpu())
                    rec.update(validity=validity(smiles), uniqueness=uniqueness(smiles),
                               quality=drug_like_quality(smiles))
        finally:
            model.train(was_training)
        log.info("step %d: %s", step, shown_metrics(rec))

    return on_log


# What a training history records that is worth a curve, grouped by what it measures.
CURVE_METRICS: dict[str, tuple[str, ...]] = {
    "nll": ("nll_nats", "heldout_nll", "heldout_nll_l2r"),
    "samples": ("quality", "validity", "uniqueness"),
    "self_consistency": ("sc_abs_err",),
    "reward": ("reward_mean", "kl_minus_logz"),
}


def training_curves(training: list[dict]) -> pd.DataFrame:
    """A model's training history in long form, one row per recorded value of a curve metric.

    Stages follow each other on one axis: ``total_step`` is the step within the stage plus the
    steps of the stages before it (``steps_done``, or the last recorded step of a stage that
    does not say).  Metrics recorded only every N steps (held-out NLL, sample quality) give rows
    only where they were measured.

    Columns: ``stage_no`` (1-based), ``stage``, ``step``, ``total_step``, ``metric``, ``value``.
    """
    wanted = {m for group in CURVE_METRICS.values() for m in group}
    rows, offset = [], 0
    for no, rec in enumerate(training or [], start=1):
        history = rec.get("history") or []
        for entry in history:
            step = int(entry.get("step", 0))
            for metric, value in entry.items():
                if metric in wanted and isinstance(value, (int, float)) and value == value:
                    rows.append((no, str(rec.get("stage", "?")), step, offset + step, metric,
                                 float(value)))
        done = rec.get("steps_done")
        offset += int(done) if done is not None else max(
            (int(e.get("step", 0)) for e in history), default=0)
    return pd.DataFrame(rows, columns=["stage_no", "stage", "step", "total_step", "metric",
                                       "value"])


def stage_table(training: list[dict]) -> pd.DataFrame:
    """One row per training stage: what it ran (steps, batch, learning rate, data, precision),
    where it ended (the last training loss and held-out NLL it recorded) and whatever else the
    stage stored about itself (the energy and β of a fine-tuning, for example)."""
    known = {"stage", "config", "history", "steps_done", "n_train"}
    rows = []
    for no, rec in enumerate(training or [], start=1):
        cfg = rec.get("config") or {}
        history = rec.get("history") or []
        last = history[-1] if history else {}
        heldout = [e["heldout_nll"] for e in history if "heldout_nll" in e]
        rows.append({
            "stage": no,
            "kind": rec.get("stage", "?"),
            "steps": rec.get("steps_done", last.get("step")),
            "of": cfg.get("steps"),
            "batch": cfg.get("batch_size"),
            "peak lr": cfg.get("lr"),
            "training molecules": rec.get("n_train"),
            "precision": cfg.get("precision", "fp32"),
            "last loss": last.get("loss"),
            "last held-out NLL": heldout[-1] if heldout else None,
            "details": "; ".join(f"{k} {v}" for k, v in rec.items() if k not in known),
        })
    return pd.DataFrame(rows)
