"""The Python API as docs/api.md and the README show it: load_model takes what --weights takes
(registry names and file names found in the weights cache), describe_checkpoint the same, and
frames of the wrong kind are errors that say what to pass."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest
import torch

from stdan_cli.api import describe_checkpoint, load_model, upscale_window
from stdan_cli.api import model as api  # where the API resolves what --weights takes
from stdan_cli.errors import WeightsNotFound
from stdan_cli.model import STDAN, STDANConfig
from stdan_cli.weights import resolve_weights

REPO = Path(__file__).resolve().parents[1]
API_DOC = REPO / "docs" / "api.md"
README = REPO / "README.md"
OFFICIAL_FILE = "STDAN_20220306.pth"  # the shipped registry's file name for 'stdan-vimeo'


@pytest.fixture(scope="module")
def fixture_cache(tmp_path_factory, reference_dir) -> Path:
    """A STDAN_HOME whose weights cache holds the parity fixture weights under the default entry's name."""
    home = tmp_path_factory.mktemp("stdan_home")
    (home / "weights").mkdir()
    shutil.copyfile(reference_dir / "parity_weights_fp16.pt", home / "weights" / OFFICIAL_FILE)
    return home


@pytest.fixture
def cache_env(fixture_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("STDAN_HOME", str(fixture_cache))
    monkeypatch.delenv("STDAN_REGISTRY", raising=False)  # the shipped registry
    monkeypatch.chdir(tmp_path)  # no checkpoint here: names must come from the cache
    return fixture_cache


def _python_block(path: Path) -> str:
    return re.search(r"```python\n(.*?)```", path.read_text(), re.S).group(1)


@pytest.mark.slow
def test_the_api_docs_python_block_runs_as_written(cache_env):
    block = _python_block(API_DOC)
    assert 'load_model("stdan-vimeo"' in block
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "docs/api.md", "exec"), {})
    printed = out.getvalue().strip()
    assert printed == re.search(r"print\(out\.shape\)\s+# (.*)", block).group(1)  # what the comment promises


@pytest.mark.slow
def test_the_readme_python_block_runs_as_written(tmp_path, monkeypatch):
    from media import make_video

    monkeypatch.chdir(tmp_path)
    make_video(tmp_path / "in.mp4", n_frames=30, size=(24, 16), rate=10)
    names: dict = {}
    exec(compile(_python_block(README), "README.md (Python)", "exec"), names)
    assert (tmp_path / "out.mp4").is_file() and names["result"].summary.frames_out == 39  # 2 s at 10 fps: 20 in


def test_load_model_resolves_registry_names_and_file_names_from_the_cache(cache_env, reference_dir):
    cached = cache_env / "weights" / OFFICIAL_FILE
    assert resolve_weights("stdan-vimeo") == cached
    assert resolve_weights(OFFICIAL_FILE) == cached  # not in the working folder: the cache's
    here = Path(OFFICIAL_FILE)
    shutil.copyfile(reference_dir / "parity_weights_fp16.pt", here)
    assert api._checkpoint(OFFICIAL_FILE) == OFFICIAL_FILE  # a file of that name here is that file, as with --weights
    loaded = load_model("stdan-vimeo")
    assert loaded.descriptor.num_params == 8_292_843 and not loaded.model.training
    expected = torch.load(cached, weights_only=True)
    assert all(torch.equal(v, expected[k].float()) for k, v in loaded.model.state_dict().items())
    assert describe_checkpoint("stdan-vimeo") == loaded.descriptor


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("STDAN_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("STDAN_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)
    for spec in ("stdan-vimeo", OFFICIAL_FILE):
        with pytest.raises(WeightsNotFound, match=r"looked for 'stdan-vimeo' in .*empty/weights.*run `stdan download-weights`"):
            load_model(spec)
    with pytest.raises(WeightsNotFound, match=r"weights file other\.pth does not exist \(give a checkpoint's path, "
                                              r"or a registry name: stdan-vimeo, which `stdan download-weights NAME`"):
        load_model("other.pth")
    with pytest.raises(WeightsNotFound, match="unknown weights 'nosuch'.*known: stdan-vimeo"):
        describe_checkpoint("nosuch")


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return STDAN(STDANConfig.small()).eval()


def test_describe_checkpoint_accepts_the_wrappers_load_model_accepts(small, tmp_path):
    sd = small.state_dict()
    plain = describe_checkpoint(sd)
    prefixed = {f"module.{k}": v for k, v in sd.items()}
    for wrapped in ({"params": sd}, {"params_ema": sd}, {"state_dict": prefixed}, {"model": sd}, prefixed):
        assert describe_checkpoint(wrapped) == plain
        assert load_model(wrapped).descriptor == plain
    torch.save({"state_dict": sd}, tmp_path / "wrapped.pth")
    assert describe_checkpoint(tmp_path / "wrapped.pth") == plain == describe_checkpoint(str(tmp_path / "wrapped.pth"))


def test_uint8_frames_and_dtype_or_device_mismatch_are_errors_naming_what_to_pass(small):
    frames = torch.randint(0, 256, (1, 4, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(TypeError, match=r"frames are torch\.uint8; .* pass frames\.to\(torch\.float32\) / 255"):
        upscale_window(small, frames)
    with pytest.raises(TypeError, match=r"frames are torch\.float64 but the model's weights are torch\.float32: "
                                        r"pass frames\.to\(torch\.float32\), or load the model with "
                                        r"load_model\(\.\.\., dtype=torch\.float64\)"):
        upscale_window(small, frames.double() / 255)
    with pytest.raises(ValueError, match=r"frames are on meta but the model is on cpu: pass frames\.to\('cpu'\)"):
        upscale_window(small, torch.empty(1, 4, 3, 8, 8, device="meta"))
    assert upscale_window(small, frames.float() / 255).shape == (1, 7, 3, 32, 32)  # what the message says works
