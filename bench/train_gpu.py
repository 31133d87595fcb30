"""Train the default molecule model on one GPU against a wall-clock budget: both stages, no RDKit.

A GPU does in minutes what takes hours on 2 CPU cores, but lent GPU time comes in fixed slices,
so each stage gets seconds, not steps: a short timing probe turns the seconds into a step count,
and the cosine schedule then runs over exactly that many steps.  The machine only needs torch and
numpy (the engine and training layers import nothing else); the data arrive as token ids made by
``bench/pack_tokens.py`` on a machine with RDKit, and every epoch sees the fragments of each
molecule in a new order (:mod:`mam_core.chem.block_order`, exact and RDKit-free).

    python bench/train_gpu.py --data tokens.npz --out OUT --arm-seconds 330 --distill-seconds 150

Writes ``OUT/arm.pt`` (after stage 1) and ``OUT/mam.pt`` (after stage 2), half precision with
the tokenizer and the training history inside (``mam export`` then adds the outlier calibration
and sampling settings on a machine with RDKit), and ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mam_core import MaM, NetworkConfig, TrainConfig, distill, load, save, train_arm  # noqa: E402,E501
from mam_core.chem.block_order import shuffled_copies  # noqa: E402
from mam_core.core.likelihood import ao_arm_bound  # noqa: E402
from mam_core.core.vocab import Vocabulary  # noqa: E402

T0 = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - T0


def say(msg: str) -> None:
    print(f"[{elapsed():6.1f}s] {msg}", flush=True)


def load_tokens(path: str):
    """``(ids (N, D) uint8, tokenizer dict, heldout ids)`` from a ``pack_tokens.py`` file."""
    z = np.load(path, allow_pickle=False)
    tok = json.loads(str(z["tokenizer"]))
    return z["train"], tok, z["heldout"]


def seconds_per_step(run, model: MaM, short: int = 5, long: int = 25) -> float:
    """Seconds per step of ``run(model_copy, steps)`` (a real trainer call), from the difference
    of a short and a long run on throwaway copies, so set-up costs (chain start) cancel; a first
    short run warms the kernels up and is not counted."""
    times = []
    for steps in (short, short, long):
        probe = copy.deepcopy(model)
        sync(probe.device)
        t = time.perf_counter()
        run(probe, steps)
        sync(probe.device)
        times.append(time.perf_counter() - t)
        del probe
    per_step = (times[2] - times[1]) / (long - short)
    # a noisy difference must not promise millions of steps: never below a third of the average
    return max(per_step, times[2] / long / 3)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Deadline:
    """Creates a stop file at an absolute time (seconds since the script started), so a stage
    slower than its probe said still stops cleanly between steps and its weights are saved."""

    def __init__(self, at: float, stop_file: Path):
        self.stop_file = stop_file
        stop_file.unlink(missing_ok=True)
        self.timer = threading.Timer(max(at - elapsed(), 0), stop_file.touch)
        self.timer.daemon = True
        self.timer.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.stop_file.unlink(missing_ok=True)


def heldout_nll(model: MaM, x: torch.Tensor, passes: int = 4) -> float:
    """AO-ARM estimate of −log p on held-out molecules, nats per molecule (mean of passes)."""
    return ao_arm_bound(model, x, batch_size=2048, passes=passes, seed=7)


@torch.no_grad()
def heldout_nll_l2r(model: MaM, x: torch.Tensor) -> float:
    """Exact −log p in the left-to-right order (the order sampling writes in), nats per molecule.

    The prefix rows of the training loss score every hidden position given the prefix, not the
    next one, so their loss is no estimate of this number."""
    model.eval()
    ll = torch.cat([model.log_likelihood_arm(x[i:i + 1024], order="l2r").float()
                    for i in range(0, len(x), 1024)])
    model.train()
    return float(-ll.mean())


@torch.no_grad()
def marginal_vs_arm(model: MaM, x: torch.Tensor, orders: int = 4) -> dict:
    """Spearman and mean gap between the one-pass marginal and a multi-order AO-ARM estimate."""
    model.eval()
    lm = model.log_marginal(x).float().cpu().numpy()
    la = model.log_likelihood_arm(x, num_orders=orders, seed=0).float().cpu().numpy()
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    rho = float(np.corrcoef(rank(lm), rank(la))[0, 1])
    return {"spearman": rho, "mam_mean": float(lm.mean()), "arm_mean": float(la.mean()),
            "rel_gap": float(abs(lm.mean() - la.mean()) / abs(la.mean()))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="token file from bench/pack_tokens.py")
    p.add_argument("--out", required=True)
    p.add_argument("--arm-seconds", type=float, default=330)
    p.add_argument("--distill-seconds", type=float, default=150)
    p.add_argument("--reorders", type=int, default=3,
                   help="extra fragment orders of every molecule (each epoch sees another)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--d-model", type=int, default=192)
    p.add_argument("--n-layers", type=int, default=6)
    p.add_argument("--n-heads", type=int, default=6)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--distill-batch", type=int, default=512)
    p.add_argument("--distill-lr", type=float, default=1e-3)
    p.add_argument("--deadline", type=float, default=560,
                   help="seconds after start when training stops whatever the budgets say")
    p.add_argument("--init", help="continue stage 1 from this model's conditionals "
                   "(same tokenizer) instead of starting from scratch")
    p.add_argument("--l2r-fraction", type=float, default=0.0,
                   help="stage 1: share of rows trained on left-to-right prefixes (the contexts "
                        "that sampling meets)")
    p.add_argument("--marginal", choices=["warm", "keep"], default="warm",
                   help="stage 2 starts the marginal trunk from the conditional one (warm), or "
                        "keeps --init's distilled marginal head and follows the new conditionals")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                   help="stage 1 arithmetic on CUDA: bfloat16 autocast, or float32 with TF32 "
                        "matrix products")
    p.add_argument("--heldout", type=int, help="first N held-out molecules for the NLLs")
    p.add_argument("--limit", type=int, help="first N training molecules (a dry run)")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    if args.marginal == "keep" and not args.init:
        p.error("--marginal keep needs --init: a new model has no marginal head to keep")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    use_bf16 = device.type == "cuda" and args.precision == "bf16"
    summary: dict = {"device": str(device), "torch": torch.__version__, "args": vars(args)}

    ids, tok, held = load_tokens(args.data)
    if args.limit:
        ids = ids[: args.limit]
    if args.heldout:
        held = held[: args.heldout]
    vocab = Vocabulary.from_dict(tok["vocab"])
    say(f"{len(ids):,} training strings, D={ids.shape[1]}, K={vocab.K}; {len(held):,} held out")
    extra = shuffled_copies(ids, vocab.tokens, args.reorders, seed=1, jobs=args.jobs)
    # CUDA starts only now: the worker processes above are forked from a process without it
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        say(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    data = torch.from_numpy(np.concatenate([ids, extra])).to(device).long()
    heldout = torch.from_numpy(held).to(device).long()
    say(f"{len(data):,} strings with {args.reorders} extra fragment orders each")

    cfg = NetworkConfig(D=ids.shape[1], K=vocab.K, arch="transformer", d_model=args.d_model,
                        n_layers=args.n_layers, n_heads=args.n_heads, marginal_pool="cls+sum")
    if args.init:
        model = load(args.init, device)
        if model.metadata.get("tokenizer") != tok:
            raise SystemExit(f"--init {args.init} reads another tokenizer than {args.data}")
        say(f"stage 1 continues from {args.init}")
    else:
        model = MaM(cfg, vocab, {"data": "MOSES train (molsets 0.3.1 wheel), fragment blocks",
                                 "tokenizer": tok}).to(device)
    if args.init:
        summary["start"] = {"heldout_nll_arm": heldout_nll(model, heldout),
                            "heldout_nll_l2r": heldout_nll_l2r(model, heldout[:2048]),
                            "marginal_vs_arm": marginal_vs_arm(model, heldout[:512])}
        say(f"at the start: {summary['start']}")
    n_par = sum(p.numel() for p in model.parameters())
    say(f"model: {n_par / 1e6:.2f} M parameters")
    stop_file = Path(f"/tmp/mam-train-gpu-stop-{os.getpid()}")

    # ---- stage 1: AO-ARM conditionals (bfloat16 autocast per step by default)
    def arm_run(m, steps, **kw):
        cfg = TrainConfig(steps=steps, batch_size=args.batch, lr=args.lr, warmup=args.warmup,
                          lr_min_ratio=0.05, checkpoint_every=0, log_every=max(steps // 40, 1),
                          precision="bf16" if use_bf16 else "fp32",
                          l2r_fraction=args.l2r_fraction)
        return train_arm(m, data, cfg, progress=False, **kw)

    sps = seconds_per_step(arm_run, model)
    steps = max(50, int(args.arm_seconds / sps))
    say(f"stage 1: {sps * 1000:.1f} ms a step -> {steps:,} steps of {args.batch} "
        f"({steps * args.batch / len(ids):.1f} passes over the molecules)")
    log = lambda r: say(f"  step {r['step']:>6}: nll {r['loss']:.2f} lr {r['lr']:.2e}")  # noqa
    t = time.perf_counter()
    # stage 1 may overrun its budget by a fifth, never into stage 2's share of the deadline
    at = min(elapsed() + 1.2 * args.arm_seconds, args.deadline - args.distill_seconds)
    with Deadline(at, stop_file):
        arm_run(model, steps, on_log=log, stop_file=stop_file,
                run_info={"n_train": int(len(ids)), "reorders": args.reorders,
                          "device": torch.cuda.get_device_name(device)
                          if device.type == "cuda" else "cpu",
                          "precision": "bf16 autocast" if use_bf16 else "fp32 (TF32)"})
    summary["arm_seconds"] = time.perf_counter() - t
    summary["arm_steps"] = steps
    summary["heldout_nll_arm"] = heldout_nll(model, heldout)
    summary["heldout_nll_l2r"] = heldout_nll_l2r(model, heldout[:2048])
    say(f"stage 1 done in {summary['arm_seconds']:.0f}s; held-out AO-ARM NLL "
        f"{summary['heldout_nll_arm']:.2f} nats (left to right {summary['heldout_nll_l2r']:.2f})")
    save(model, out / "arm.pt", half=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))

    if args.distill_seconds <= 0:
        say("no stage 2 asked for")
        return

    # ---- stage 2: distil the marginal head (float32 with TF32 matmuls: log p needs the digits)
    if args.marginal == "warm":
        model.warm_start_marginal()
    model.metadata.setdefault("training", [])

    def distill_run(m, steps, **kw):
        cfg = TrainConfig(steps=steps, batch_size=args.distill_batch, lr=args.distill_lr,
                          warmup=min(200, steps // 10), lr_min_ratio=0.05, checkpoint_every=0,
                          log_every=max(steps // 20, 1))
        return distill(m, data, cfg, warm_start=False, progress=False, **kw)

    sps = seconds_per_step(distill_run, model)
    steps = max(50, int(args.distill_seconds / sps))
    say(f"stage 2: {sps * 1000:.1f} ms a step -> {steps:,} steps of {args.distill_batch}")
    log = lambda r: say(f"  step {r['step']:>6}: sc {r['loss']:.3f} lr {r['lr']:.2e}")  # noqa
    t = time.perf_counter()
    with Deadline(args.deadline, stop_file):
        distill_run(model, steps, on_log=log, stop_file=stop_file)
    summary["distill_seconds"] = time.perf_counter() - t
    summary["distill_steps"] = steps
    summary["marginal_vs_arm"] = marginal_vs_arm(model, heldout[:512])
    say(f"stage 2 done in {summary['distill_seconds']:.0f}s; {summary['marginal_vs_arm']}")
    save(model, out / "mam.pt", half=True)
    summary["total_seconds"] = elapsed()
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    say("done")


if __name__ == "__main__":
    main()
