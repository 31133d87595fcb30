"""Energy-based training cost per step: MaM vs the autoregressive baseline (ARM-EB).

Both train the same network (same width, depth and batch) with the same REINFORCE objective; MaM
reads log p(x) from its marginal head in one pass and refreshes persistent chains with
censor-and-resample (k passes), ARM-EB sums D conditionals (D passes, all backpropagated) and
draws fresh ancestral samples (D more passes). The table shows time per step and peak memory of
each, side by side, for Ising lattices (D = 16, 64, 100) and SELFIES molecules with the
lipophilicity reward (D = 55).

Memory is the peak over steps of the activations autograd keeps for the backward pass (summed
by a saved-tensors hook; this is the part that grows with D), and on CUDA also the allocator's
``max_memory_allocated``. Each (method, D) runs in its own process.

    python bench/eb_step_cost.py                 # all rows, CPU or CUDA (auto)
    python bench/eb_step_cost.py --steps 5 --batch-size 64 --device cpu
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

ROWS = [("ising", 16), ("ising", 64), ("ising", 100), ("molecules", 55)]


def _measure(kind: str, D: int, method: str, args, queue) -> None:
    import torch

    from energies import get_energy
    from mam_core import MaM, NetworkConfig
    from mam_core.training import train_arm_eb
    from mam_core.core.config import TrainConfig
    from mam_core.core.model import resolve_device
    from mam_core.chem.molecules import default_tokenizer
    from mam_core.training import train_eb

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if kind == "ising":
        energy = get_energy("ising", n=int(round(D**0.5)), sigma=0.1, bias=0.2)
        K = 2
    else:
        energy = get_energy("lipophilicity", tokenizer=default_tokenizer(D), target=-4.0, tau=0.1)
        K = energy.K
    cfg_net = NetworkConfig(D=D, K=K, arch=args.arch, hidden=args.hidden, n_layers=args.layers,
                            d_model=args.d_model, n_heads=4)
    model = MaM(cfg_net).to(device)
    stamps: list[float] = []
    cfg = TrainConfig(steps=args.warmup + args.steps, batch_size=args.batch_size, lr=1e-4,
                      log_every=1,
                      checkpoint_every=0, device=str(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    saved = {"now": 0, "peak": 0}

    def pack(t):
        saved["now"] += t.numel() * t.element_size()
        return t

    def on_log(_rec):
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        saved["peak"] = max(saved["peak"], saved["now"])
        saved["now"] = 0

    trainer = train_eb if method == "MaM" else train_arm_eb
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        trainer(model, energy, cfg, progress=False, on_log=on_log)
    per_step = [b - a for a, b in zip(stamps[args.warmup - 1 :], stamps[args.warmup :])]
    result = {"sec": statistics.median(per_step), "mib": saved["peak"] / 2**20,
              "device": str(device)}
    if device.type == "cuda":
        result["cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    queue.put(result)


def measure(kind: str, D: int, method: str, args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(kind, D, method, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=5, help="timed steps per row (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--arch", default="mlp", choices=["mlp", "transformer"])
    p.add_argument("--hidden", type=int, default=512, help="residual-MLP width")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--d-model", type=int, default=64, help="transformer width")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    width = f"hidden {args.hidden}" if args.arch == "mlp" else f"d_model {args.d_model}"
    print(f"network: {args.arch} ({width}, {args.layers} layers), batch {args.batch_size}, median "
          f"of {args.steps} steps after {args.warmup} warm-up")
    header = ("| target | D | MaM s/step | ARM-EB s/step | time ratio | MaM activations MiB | "
              "ARM-EB activations MiB | memory ratio |")
    import torch

    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    print(header + (" MaM / ARM-EB CUDA peak MiB |" if use_cuda else ""))
    print("|" + "---|" * (9 if use_cuda else 8))
    for kind, D in ROWS:
        mam = measure(kind, D, "MaM", args)
        arm = measure(kind, D, "ARM", args)
        mem_ratio = arm["mib"] / mam["mib"] if mam["mib"] > 0 else float("nan")
        print(f"| {kind} | {D} | {mam['sec']:.4f} | {arm['sec']:.4f} | "
              f"{arm['sec'] / mam['sec']:.1f}× | {mam['mib']:.1f} | {arm['mib']:.1f} | "
              f"{mem_ratio:.1f}× |"
              + (f" {mam['cuda_mib']:.0f} / {arm['cuda_mib']:.0f} |" if "cuda_mib" in mam else ""),
              flush=True)
    print(f"device: {mam['device']}")


if __name__ == "__main__":
    main()
