"""Benchmark: one-pass MaM marginal vs the exact AO-ARM likelihood (D sequential passes).

Same model, same batch, one run, for several sequence lengths D.  The expected speed-up of
``log_marginal`` over ``log_likelihood_arm`` is about D (target: at least 0.8·D).

    python bench/marginal_speed.py                      # CPU (and CUDA when present)
    python bench/marginal_speed.py --lengths 16 64 100 --batch 256 --device cpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mam_core import MaM, NetworkConfig


def _time(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(D: int, K: int, batch: int, device: torch.device, repeats: int, arch: str, d_model: int,
          n_layers: int):
    torch.manual_seed(0)
    cfg = NetworkConfig(D=D, K=K, arch=arch, d_model=d_model, n_layers=n_layers, n_heads=4,
                        hidden=4 * d_model)
    model = MaM(cfg).to(device).eval()
    x = torch.randint(0, K, (batch, D), device=device)
    with torch.no_grad():
        t_mam = _time(lambda: model.log_marginal(x), repeats, device)
        t_arm = _time(lambda: model.log_likelihood_arm(x, num_orders=1, seed=0),
                      max(1, repeats // 3), device)
    return t_mam, t_arm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 100])
    p.add_argument("--K", type=int, default=40, help="vocabulary size (SELFIES on MOSES is ~40)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--arch", default="transformer", choices=["transformer", "mlp"])
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", nargs="+", default=None,
                   help="devices to run (default: cpu, plus cuda when present)")
    args = p.parse_args()
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])

    print(f"arch={args.arch} d_model={args.d_model} n_layers={args.n_layers} K={args.K} "
          f"batch={args.batch} torch={torch.__version__} threads={torch.get_num_threads()}")
    header = (f"{'device':<8}{'D':>5}{'MaM (s)':>12}{'AO-ARM (s)':>13}{'speed-up':>10}"
              f"{'0.8*D':>8}{'  target met':>12}")
    print(header)
    print("-" * len(header))
    for dev in devices:
        device = torch.device(dev)
        for D in args.lengths:
            t_mam, t_arm = bench(D, args.K, args.batch, device, args.repeats, args.arch,
                                 args.d_model, args.n_layers)
            ratio = t_arm / t_mam
            met = "yes" if ratio >= 0.8 * D else "no"
            print(f"{dev:<8}{D:>5}{t_mam:>12.4f}{t_arm:>13.3f}{ratio:>9.1f}x{0.8 * D:>8.1f}"
                  f"{met:>12}")


if __name__ == "__main__":
    main()
