"""``magicanimate train`` as a user runs it: the quick start from a clone, and no run folder for a bad config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from magicanimate.cli.main import main

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"


@pytest.mark.parametrize("setting,message", [
    ("data.root=/nonexistent/data", "dataset folder not found: /nonexistent/data"),
    ("model.pretrained=/nonexistent/weights", "model.pretrained folder not found: /nonexistent/weights"),
    ("model.pretrained=random:huge", "unknown size 'huge'"),
    ("optim.lr_scheduler=bogus", "optim.lr_scheduler must be one of linear, cosine"),
    ("model.trainable=[nothing.*]", "matches no parameter"),  # found only once the models are built
    ("data.width=63", "data.width/height must be positive multiples of 8"),
])
def test_an_invalid_config_leaves_no_run_folder(tmp_path, capsys, setting, message):
    output = tmp_path / "runs" / "bad"
    code = main(["train", "--stage", "1", "--config", str(QUICKSTART), "--output", str(output), "--set", setting])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and message in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # neither the run folder nor its parent "runs"


def test_an_existing_folder_is_kept_when_setting_up_fails(tmp_path, capsys):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    code = main(["train", "--stage", "1", "--config", str(QUICKSTART), "--output", str(output),
                 "--set", "model.trainable=[nothing.*]"])
    assert code == 1 and "matches no parameter" in capsys.readouterr().err
    assert (output / "notes.txt").read_text() == "keep me"


def test_the_quick_start_runs_from_a_clone(tmp_path, capsys):
    """docs/training.md's quick start needs nothing outside the repository (no ../shared) and writes under runs/."""
    doc = (REPO / "docs" / "training.md").read_text()
    quick = doc.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    command = re.search(r"^magicanimate train .*$", quick, re.M).group(0)
    assert command == "magicanimate train --stage 1 --config configs/quickstart.yaml"
    assert "shared" not in quick and "shared" not in QUICKSTART.read_text()
    import yaml

    config = yaml.safe_load(QUICKSTART.read_text())
    assert config["output"].startswith("runs/") and "/runs/" in (REPO / ".gitignore").read_text().split()
    assert config["model"]["pretrained"] == "random:tiny" and config["data"]["root"].startswith("synthetic:")
    output = tmp_path / "quickstart"
    code = main(["train", "--stage", "1", "--config", str(QUICKSTART), "--output", str(output), "--max-steps", "2"])
    assert code == 0, capsys.readouterr().err
    assert (output / "weights" / "MagicAnimate" / "densepose_controlnet" / "config.json").is_file()
    assert "trained steps 0..2" in capsys.readouterr().out
