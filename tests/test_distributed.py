"""Training under torchrun: 2 gloo processes on the CPU against 1 process with the same global
batch.

The worker (tests/ddp_worker.py) runs either as one plain process or under ``torchrun
--nproc_per_node 2``; each rank writes its final weights, so the test can compare ranks with each
other and with the single-process run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mam_core.core.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    res = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    failed = f"{' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert res.returncode == 0, failed
    return res


def _torchrun(*args: str, n: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
            *args]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def loop_runs(tmp_path_factory):
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    _run([sys.executable, str(WORKER), "loop", str(one)])
    _run(_torchrun(str(WORKER), "loop", str(two)))
    return one, two


@pytest.mark.slow
def test_ranks_end_identical_and_match_one_process(loop_runs):
    """Same global batch, deterministic loss: DDP's averaged gradient equals the 1-process gradient,
    so 5 Adam steps later the weights agree to float precision, and both ranks are identical."""
    one, two = loop_runs
    r0, r1 = _weights(two / "loop.rank0.pt"), _weights(two / "loop.rank1.pt")
    assert _max_diff(r0, r1) == 0.0
    assert _max_diff(r0, _weights(one / "loop.rank0.pt")) < 1e-4
    h1 = json.loads((one / "loop.rank0.json").read_text())
    h2 = json.loads((two / "loop.rank0.json").read_text())
    assert [r["step"] for r in h1] == [r["step"] for r in h2] == [1, 2, 3, 4, 5]
    for a, b in zip(h1, h2):  # losses averaged over ranks = the global-batch loss
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    assert h2[-1]["loss"] < h2[0]["loss"]


def test_rank0_checkpoint_holds_every_ranks_chains(loop_runs):
    one, two = loop_runs
    assert sorted(p.name for p in (two / "ckpt").iterdir()) == ["checkpoint.pt"]
    ts1 = load_checkpoint(one / "ckpt" / "checkpoint.pt").train_state
    ts2 = load_checkpoint(two / "ckpt" / "checkpoint.pt").train_state
    assert torch.equal(ts1["extra"]["chains"], ts2["extra"]["chains"])  # rank order = global order
    assert ts2["rng_ranks"].shape[0] == 2 and ts2["step"] == 5


@pytest.mark.slow
def test_every_trainer_under_two_processes(tmp_path):
    """Stage 1, stage 2 and energy-based training: ranks identical; quality as one process."""
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, str(WORKER), "trainers", str(one)])
    _run(_torchrun(str(WORKER), "trainers", str(two)))
    for stage in ("arm", "distill", "eb"):
        assert _max_diff(_weights(two / f"{stage}.rank0.pt"),
                         _weights(two / f"{stage}.rank1.pt")) == 0.0, stage
    m1 = json.loads((one / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    for m in (m1, m2):
        assert m["arm"]["arm_nll"] < m["init"]["arm_nll"] - 0.3  # stage 1 learned the data
        # stage 2 closed the gap
        assert m["distill"]["marginal_gap"] < m["arm"]["marginal_gap"] - 0.1
        assert m["eb"]["eb_kl"] < m["eb_init"]["eb_kl"] - 0.15  # EB moved towards p*
    # same objective and global batch, different random streams: close, not equal
    assert m1["arm"]["arm_nll"] == pytest.approx(m2["arm"]["arm_nll"], abs=0.2)
    assert m1["distill"]["marginal_gap"] == pytest.approx(m2["distill"]["marginal_gap"], abs=0.25)
    assert m1["eb"]["eb_kl"] == pytest.approx(m2["eb"]["eb_kl"], abs=0.08)


@pytest.mark.slow
def test_cli_under_torchrun_trains_resumes_and_refuses_other_commands(tmp_path):
    out = tmp_path / "run"
    common = ["train-eb", "--energy", "ising", "--ising-size", "3", "--preset", "cpu_tiny",
              "--batch-size", "32",
              "--out", str(out), "--no-progress", "--device", "cpu", "--log-every", "5",
              "--checkpoint-every", "10"]
    res = _run(_torchrun("-m", "mam_core.cli", *common, "--steps", "20"))
    assert res.stdout.count("energy-based training finished at step "
                            "20") == 1  # rank 0 reports alone
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck.train_state["step"] == 20 and ck.train_state["extra"]["chains"].shape == (32, 9)
    _run(_torchrun("-m", "mam_core.cli", *common, "--steps", "30", "--resume"))
    ck = load_checkpoint(out / "checkpoint.pt")
    steps = [r["step"] for r in ck.metadata["training"][-1]["history"]]
    assert ck.train_state["step"] == 30 and steps == [5, 10, 15, 20, 25, 30]
    # a 1-process resume of the 2-process checkpoint re-splits the same 32 chains
    _run([sys.executable, "-m", "mam_core.cli", *common, "--steps", "35", "--resume"])
    assert load_checkpoint(out / "checkpoint.pt").train_state["step"] == 35
    # a stop file stops every rank at the same step, with a checkpoint
    (tmp_path / "STOP").touch()
    res = _run(_torchrun("-m", "mam_core.cli", *common, "--steps", "100", "--resume", "--stop-file",
                         str(tmp_path / "STOP")))
    assert res.stdout.count("stopped early at step 35") == 1
    assert load_checkpoint(out / "checkpoint.pt").train_state["step"] == 35

    bad = subprocess.run(
        _torchrun("-m", "mam_core.cli", "train-eb", "--energy", "ising", "--ising-size", "3",
                  "--batch-size", "33",
                  "--steps", "2", "--out", str(tmp_path / "bad"), "--no-progress", "--device",
                  "cpu"),
        env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode != 0 and "does not split evenly over 2 processes" in bad.stderr
    sample = subprocess.run(
        _torchrun("-m", "mam_core.cli", "sample", "--model", str(out / "checkpoint.pt"), "--order",
                  "l2r"),
        env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert sample.returncode != 0 and "run under torchrun" in sample.stderr


def test_a_torchrun_worker_ends_with_its_exit_handlers_run_and_its_output_flushed():
    """Workers skip the interpreter's teardown (where gloo can abort a finished run), so what a
    normal exit does must still happen: exit handlers run, buffered output reaches the pipe and
    the exit code is the one given."""
    script = (
        "import atexit, logging, sys\n"
        "from mam_core.cli import _end_torchrun_worker\n"
        "atexit.register(lambda: print('exit handler ran'))\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        "logging.getLogger('w').warning('logged')\n"
        "sys.stdout.write('buffered, no newline')\n"
        "_end_torchrun_worker(3)\n"
        "print('never reached')\n"
    )
    res = subprocess.run([sys.executable, "-c", script], env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 3
    assert res.stdout == "buffered, no newlineexit handler ran\n"
    assert "logged" in res.stderr
