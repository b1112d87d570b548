"""A checkpoint that is not the registry's is never taken for it (issue 22, item 3): size,
dtype, parameter count and sha256 are checked on import; --force imports under the user's name;
the first verified download of an entry without a sha256 records it."""

from __future__ import annotations

import io
import json

import torch
from click.testing import CliRunner
from weights_server import small_checkpoint_bytes, small_state_dict, write_registry

from stdan_cli.cli import main
from stdan_cli.weights import resolve_weights


def run(*args):
    return CliRunner().invoke(main, ["download-weights", *args])


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def fp16_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in small_state_dict().items()}, buffer)
    return buffer.getvalue()


def registry_knowing(tmp_path, monkeypatch, **fields):
    """The 'tiny' entry with what the registry knows about the genuine file."""
    genuine = small_checkpoint_bytes()
    n = sum(v.numel() for k, v in small_state_dict().items() if not k.endswith(("relative_position_index", "attn_mask")))
    values = {"approx_size_bytes": len(genuine), "dtype": "float32", "num_params": n, **fields}
    monkeypatch.setenv("STDAN_REGISTRY", str(write_registry(tmp_path / "known.json", **values)))
    return genuine


def test_wrong_size_and_dtype_refused_then_forced_under_own_name(weights_env, tmp_path, monkeypatch):
    registry_knowing(tmp_path, monkeypatch)
    half = tmp_path / "half.pth"
    half.write_bytes(fp16_bytes())  # the same network in float16: half the size

    line = one_error_line(run("tiny", "--from-file", str(half)))
    assert "not 'tiny'" in line and "(expected about 3.7 MB)" in line and "float16 tensors (expected float32)" in line
    assert "--force" in line and "MY-NAME" in line
    assert not (weights_env / "tiny.pth").exists()

    # --force does not put it under the registry's name either...
    line = one_error_line(run("tiny", "--from-file", str(half), "--force"))
    assert "float16 tensors (expected float32)" in line
    assert not (weights_env / "tiny.pth").exists()

    # ...but under a name of the user's own, and --weights finds it there.
    ok = run("my-half", "--from-file", str(half), "--force")
    assert ok.exit_code == 0, ok.output
    assert "my-half: verified and saved to" in ok.output
    stored = resolve_weights("my-half")
    assert stored == weights_env / "imported" / "my-half.pth" and stored.read_bytes() == half.read_bytes()
    assert not (weights_env / "tiny.pth").exists()


def test_wrong_parameter_count_refused(weights_env, tmp_path, monkeypatch):
    registry_knowing(tmp_path, monkeypatch, num_params=1000)
    genuine = tmp_path / "genuine.pth"
    genuine.write_bytes(small_checkpoint_bytes())
    line = one_error_line(run("tiny", "--from-file", str(genuine)))
    assert "parameters (expected 1,000)" in line


def test_matching_file_accepted_and_its_sha256_recorded(weights_env, tmp_path, monkeypatch):
    genuine = registry_knowing(tmp_path, monkeypatch)
    good = tmp_path / "good.pth"
    good.write_bytes(genuine)
    first = run("tiny", "--from-file", str(good))
    assert first.exit_code == 0, first.output
    assert "the registry has no sha256 for it; this file's was recorded in" in first.output
    recorded = json.loads((weights_env / "recorded-sha256.json").read_text())
    assert recorded["tiny"] == (weights_env / "tiny.pth.sha256").read_text().split()[0]

    # Another file that matches size, dtype and parameter count, but not the recorded sha256:
    sd = small_state_dict()
    sd["conv_last.bias"] += 1
    other = tmp_path / "other.pth"
    torch.save(sd, other)
    line = one_error_line(run("tiny", "--from-file", str(other), "--force"))
    assert "has sha256" in line and "must have" in line
    assert (weights_env / "tiny.pth").read_bytes() == genuine  # the verified file is untouched


def test_own_name_must_be_a_plain_name(weights_env, tmp_path):
    source = tmp_path / "x.pth"
    source.write_bytes(small_checkpoint_bytes())
    line = one_error_line(run("../escape", "--from-file", str(source), "--force"))
    assert "cannot name a checkpoint" in line
