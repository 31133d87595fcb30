"""Pack prepared training data into one small file a GPU machine can train from without RDKit.

``mam prepare-data`` writes the fragment-block ids of the training molecules with their
tokenizer; this adds held-out MOSES test molecules encoded with the same tokenizer and stores
everything as compressed ``uint8`` arrays plus the tokenizer as JSON (no pickles), for
``bench/train_gpu.py``.

    python bench/pack_tokens.py --data runs/default/data.pt --heldout 10000 --out tokens.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mam_core.chem.moses import load_moses  # noqa: E402
from mam_core.chem.tokenizers import tokenizer_from_dict  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a 'mam prepare-data' .pt file")
    p.add_argument("--heldout", type=int, default=10_000,
                   help="embedded MOSES test molecules to encode as the held-out set")
    p.add_argument("--out", required=True, help=".npz file to write")
    args = p.parse_args()
    obj = torch.load(args.data, map_location="cpu", weights_only=True)
    tok = tokenizer_from_dict(obj["tokenizer"])
    x = torch.as_tensor(obj["x"])
    if tok.K >= 256:
        raise SystemExit(f"K={tok.K} does not fit uint8")
    held = tok.encode_filtered(load_moses("test", limit=args.heldout)).ids
    np.savez_compressed(args.out, train=x.to(torch.uint8).numpy(),
                        heldout=held.to(torch.uint8).numpy(),
                        tokenizer=np.array(json.dumps(obj["tokenizer"])))
    size = Path(args.out).stat().st_size / 2**20
    print(f"wrote {args.out}: {len(x):,} training and {len(held):,} held-out strings "
          f"(D={tok.D}, K={tok.K}), {size:.1f} MB")


if __name__ == "__main__":
    main()
