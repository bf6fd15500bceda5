"""Two-process data-parallel training on CPU (accelerate launch -> torchrun, gloo backend).

Stage 1 from SD 1.5 initialisation (appearance encoder copied from the UNet, ControlNet
from ``ControlNetModel.from_unet``), decoding in DataLoader worker processes. Both ranks
must end with bit-identical weights, equal to the exported ones.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from conftest import REPO, TINY_WEIGHTS, require
from magicanimate.training.synthetic import make_synthetic_dataset
from magicanimate.training.trainer import params_digest

pytestmark = pytest.mark.slow


def test_two_process_run_keeps_ranks_identical(tmp_path):
    data = make_synthetic_dataset(tmp_path / "data", clips=2, frames=12, images=0)
    config = {
        "stage": 1, "output": str(tmp_path / "run"), "batch_size": 1, "max_steps": 4, "checkpoint_every": 2,
        "model": {"pretrained": str(require(TINY_WEIGHTS)), "controlnet_conditioning_channels": [16, 16, 32, 32]},
        "data": {"root": str(data), "width": 64, "height": 64, "num_frames": 1, "num_workers": 1},
        "optim": {"learning_rate": 1e-3},
    }
    (tmp_path / "stage1.yaml").write_text(yaml.safe_dump(config))
    accelerate = Path(sys.executable).with_name("accelerate")
    with socket.socket() as probe:  # a free port for the rendezvous (other test runs may be using one)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # `accelerate launch --cpu --num_processes 2` starts ONE process on a machine without an MPI
    # hostfile; --multi_gpu goes through torchrun, and without CUDA accelerate uses gloo on CPU.
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
               "-m", "magicanimate", "train", "--stage", "1", "--config", str(tmp_path / "stage1.yaml")]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO / "src")}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=int(os.environ.get("DDP_TIMEOUT", "300")))
    except subprocess.TimeoutExpired as err:  # show how far the ranks got
        out = (err.stdout or b"").decode(errors="replace") + (err.stderr or b"").decode(errors="replace")
        pytest.fail(f"2-process training did not finish in {err.timeout} s; its output:\n{out[-6000:]}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 4 and len(summary["rank_digests"]) == 2
    assert summary["rank_digests"][0] == summary["rank_digests"][1]
    ma = tmp_path / "run" / "weights" / "MagicAnimate"
    exported = {f"appearance_encoder.{k}": v for k, v in
                load_file(ma / "appearance_encoder" / "diffusion_pytorch_model.safetensors").items()}
    exported.update({f"controlnet.{k}": v for k, v in
                     load_file(ma / "densepose_controlnet" / "diffusion_pytorch_model.safetensors").items()})
    assert params_digest(exported) == summary["rank_digests"][0]
    assert len(list((tmp_path / "run" / "checkpoints" / "step_000004").glob("rng_rank*.pt"))) == 2
