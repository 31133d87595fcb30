"""Faults: a training run killed with SIGKILL mid-way resumes from its last checkpoint, and the
checkpoint on disk is always complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mam_core.core.checkpoint import load_checkpoint
from mam_core.cli import main


def test_sigkill_mid_run_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train-eb", "--energy", "ising", "--ising-size", "3", "--out", str(out), "--batch-size",
            "32",
            "--hidden", "32", "--checkpoint-every", "10", "--log-every", "10", "--no-progress",
            "--device", "cpu"]
    proc = subprocess.Popen([sys.executable, "-m", "mam_core.cli", *args, "--steps", "100000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "checkpoint.pt"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if ckpt.exists() and load_checkpoint(ckpt).train_state["step"] >= 30:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(
                "no checkpoint at step >= 30 within 120 s: " + proc.stderr.read1().decode()
            )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # whatever instant the kill hit, the file on disk is a complete checkpoint
    ck = load_checkpoint(ckpt)
    killed_at = ck.train_state["step"]
    assert killed_at >= 30 and killed_at % 10 == 0
    assert ck.train_state["optimizer"]["state"], "optimizer moments are saved"

    target = killed_at + 20
    assert main(args + ["--steps", str(target), "--resume"]) == 0
    assert f"finished at step {target}" in capsys.readouterr().out
    resumed = load_checkpoint(ckpt)
    assert resumed.train_state["step"] == target
    steps = [r["step"] for r in resumed.metadata["training"][-1]["history"]]
    assert steps == sorted(steps) and steps[-1] == target and len(set(steps)) == len(steps)
    assert [p.name
            for p in out.iterdir()] == ["checkpoint.pt"]  # temp files of a killed write are swept


def test_a_stale_temp_file_is_swept_by_the_next_save(tmp_path):
    from mam_core import MaM, NetworkConfig, save

    stale = tmp_path / ".m.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    save(MaM(NetworkConfig(D=3, K=2, arch="mlp", hidden=8, n_layers=1)), tmp_path / "m.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
