"""Does a fine-tuning step under bfloat16 move the model as a float32 step would?

Draws batches from the shipped default model as sampler fine-tuning does (left to right under
the syntax constraint, traced with the model itself as reference), scores them with the
lipophilicity reward, and computes the policy gradient of the same batch and the same chosen
positions in float32 and under bfloat16 autocast (with the attention a bfloat16 training step
uses). Prints the cosine between the two gradients and the ratio of their norms per batch:
a cosine near 1 means the two precisions take the same step, so differences between whole
fine-tuning runs (``bench/lipophilicity_sweep.py --precision fp32 bf16``) are the draws'.

    python bench/policy_gradient_precision.py --batches 3 --threads 1

One AMD EPYC thread, three batches of 32: cosine 0.995, 0.993, 0.994; norm ratio 0.993, 0.988,
0.990.
"""

from __future__ import annotations

import argparse
import copy

import torch

from energies import get_energy
from mam_core.chem.grammar import grammar_for
from mam_core.chem.molecules import tokenizer_of
from mam_core.core.checkpoint import load
from mam_core.core.config import TrainConfig
from mam_core.core.objectives import policy_gradient_loss
from mam_core.core.sampling import sample_traced
from mam_core.paths import default_model_path
from mam_core.training.loop import _step_precision


def gradient(model, params, x, trace, log_f, precision: str) -> torch.Tensor:
    """The flattened policy gradient of one batch at ``precision`` (fixed chosen positions)."""
    model.train()
    with _step_precision(model, TrainConfig(precision=precision)):
        out = policy_gradient_loss(model, x, trace, log_f, 1.0, 16,
                                   torch.Generator().manual_seed(5))
    grads = torch.autograd.grad(out.loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                      for g, p in zip(grads, params)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--target", type=float, default=-4.0, help="logP the reward asks for")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load(args.model or default_model_path())
    reference = copy.deepcopy(model)
    tok = tokenizer_of(model)
    energy = get_energy("lipophilicity", tokenizer=tok, target=args.target, tau=1.0)
    params = [q for q in model.conditional_parameters() if q.requires_grad]
    print("| batch | cosine | norm ratio bf16 / fp32 |\n|---|---|---|")
    for seed in range(args.batches):
        x, trace = sample_traced(model, args.batch_size, "l2r", None, grammar_for(tok), reference,
                                 torch.Generator().manual_seed(seed))
        log_f = torch.as_tensor(energy(x), dtype=torch.float32)
        a = gradient(model, params, x, trace, log_f, "fp32")
        b = gradient(model, params, x, trace, log_f, "bf16")
        print(f"| {seed} | {float(a @ b / (a.norm() * b.norm())):.4f} | "
              f"{float(b.norm() / a.norm()):.4f} |", flush=True)


if __name__ == "__main__":
    main()
