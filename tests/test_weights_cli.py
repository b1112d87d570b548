"""`stdan download-weights` as a user runs it: messages, --list, one-line errors, exit codes."""

from __future__ import annotations

from click.testing import CliRunner
from weights_server import HTML_PAGE, small_checkpoint_bytes, wrong_shape_bytes

from stdan_cli.cli import main


def run(*args):
    return CliRunner().invoke(main, ["download-weights", *args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code != 0
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_download_then_no_op_then_list(weights_env, http_server):
    data = small_checkpoint_bytes()
    http_server.add("/drive-file", data)
    listed = run("--list")
    assert listed.exit_code == 0 and "* tiny" in listed.output and "missing" in listed.output

    first = run()
    assert first.exit_code == 0, first.output
    assert f"tiny: verified and saved to {weights_env / 'tiny.pth'}" in first.output
    assert "735,507 parameters" in first.output

    again = run()
    assert again.exit_code == 0 and "already present and valid" in again.output

    listed = run("--list")
    assert "present" in listed.output and str(weights_env / "tiny.pth") in listed.output
    assert "3.7 MB" in listed.output


def test_quiet_prints_nothing(weights_env, http_server):
    http_server.add("/drive-file", small_checkpoint_bytes())
    result = run("--quiet")
    assert result.exit_code == 0 and result.output == ""


def test_errors_are_one_line(weights_env, http_server, tmp_path):
    url = http_server.add("/page", HTML_PAGE, content_type="text/html")
    assert_one_line_error(run("--url", url), "HTML web page", "--from-file")

    wrong = tmp_path / "wrong.pth"
    wrong.write_bytes(wrong_shape_bytes())
    assert_one_line_error(run("--from-file", str(wrong)), "mis-shaped", "conv_last.weight")

    assert_one_line_error(run("--from-file", str(tmp_path / "absent.pth")), "does not exist")
    assert_one_line_error(run("nosuch"), "unknown checkpoint 'nosuch'", "tiny")


def test_offline_is_one_line(weights_env, http_server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_one_line_error(run(), "offline", "HF_HUB_OFFLINE", "--from-file")
    assert http_server.requests == []


def test_filename_without_repo_id_is_a_usage_error(weights_env):
    result = run("--filename", "x.pth")
    assert result.exit_code == 2 and "--repo-id" in result.output and "Traceback" not in result.output


def test_help_documents_every_option_with_its_default():
    result = CliRunner().invoke(main, ["download-weights", "--help"])
    assert result.exit_code == 0
    for option in ("--list", "--dir", "--url", "--from-file", "--repo-id", "--filename", "--revision", "--force", "--quiet"):
        assert option in result.output
    assert "STDAN_HOME" in result.output and "Default" in result.output


def test_real_registry_lists_the_official_checkpoint(monkeypatch, tmp_path):
    monkeypatch.delenv("STDAN_REGISTRY", raising=False)
    monkeypatch.setenv("STDAN_HOME", str(tmp_path))
    result = run("--list")
    assert result.exit_code == 0
    assert "* stdan-vimeo" in result.output and "missing" in result.output and "~41.4 MB" in result.output
    assert str(tmp_path / "weights" / "STDAN_20220306.pth") in result.output


def test_list_shows_checkpoints_imported_under_own_names(weights_env, tmp_path):
    # Issue 32: a checkpoint imported with --from-file NAME --force was usable but never listed.
    source = tmp_path / "mine.pth"
    source.write_bytes(small_checkpoint_bytes())
    assert run("my-finetune", "--from-file", str(source), "--force").exit_code == 0
    listed = run("--list")
    assert listed.exit_code == 0, listed.output
    line = [x for x in listed.output.splitlines() if "my-finetune" in x]
    assert len(line) == 1 and "present" in line[0] and "3.7 MB" in line[0]
    assert str(weights_env / "imported" / "my-finetune.pth") in line[0]


def test_no_lock_file_is_left_in_the_cache(weights_env, http_server, tmp_path):
    # Issue 32: an empty .NAME.pth.lock stayed in the cache after every download or import.
    http_server.add("/drive-file", small_checkpoint_bytes())
    assert run().exit_code == 0
    source = tmp_path / "mine.pth"
    source.write_bytes(small_checkpoint_bytes())
    assert run("my-finetune", "--from-file", str(source), "--force").exit_code == 0
    assert run().exit_code == 0  # already present: the lock is taken and let go again
    left = sorted(p.relative_to(weights_env).as_posix() for p in weights_env.rglob("*"))
    assert [p for p in left if p.endswith(".lock")] == [], left
