"""Errors are told apart by their class, not by an exit code or a message: a usage error is an
OptionError (exit 2), a diverged training run is not one (exit 1)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from media import make_video
from training_data import vimeo_folder

from stdan_cli.api import check_batch
from stdan_cli.api.batch import BatchItem
from stdan_cli.cli.main import main
from stdan_cli.errors import OptionError, StdanError
from stdan_cli.pipeline.options import UpscaleOptions


def test_a_non_finite_loss_is_its_own_error_with_exit_1(tmp_path, monkeypatch):
    import stdan_cli.training.trainer as trainer

    monkeypatch.setattr(trainer, "charbonnier", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    root = vimeo_folder(tmp_path / "vimeo", train=1, test=0)
    result = CliRunner().invoke(main, ["train", "--data-root", str(root), "--config", "small", "--iterations", "1",
                                       "--batch-size", "1", "--crop", "8", "--out", str(tmp_path / "run"),
                                       "--workers", "0", "--device", "cpu", "--val-every", "0", "-q"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: the loss is nan at iteration 1")


class _NotAnOption(StdanError):
    exit_code = 2  # an exit code of 2 does not make an error the user's option mistake


def test_a_batch_stops_on_an_option_error_by_its_class(tmp_path, monkeypatch):
    import stdan_cli.api.batch as batch

    a = make_video(tmp_path / "a.mkv", n_frames=3)
    items = [BatchItem(str(a), tmp_path / "out" / "a.mkv")]

    monkeypatch.setattr(batch, "validate", lambda *args: (_ for _ in ()).throw(_NotAnOption("not an option")))
    assert check_batch(items, UpscaleOptions())[0].skip == "not an option"  # that file fails, the batch goes on
    monkeypatch.setattr(batch, "validate", lambda *args: (_ for _ in ()).throw(OptionError("--crf 99")))
    with pytest.raises(OptionError):
        check_batch(items, UpscaleOptions())
