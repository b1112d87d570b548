"""Folders the tool fills, claimed by several processes at the same time (``--part`` tasks that
start together on one work folder): one makes or marks it, the others take it as marked, and
nobody sees it half-made or replaces what is there."""

from __future__ import annotations

import json
import threading

import pytest

from stdan_cli import safe_files
from stdan_cli.jobs.workspace import MARKER, Workspace
from stdan_cli.safe_files import FolderRefused, claim_folder, rename_folder_new

FIELDS = {"what": "test folder"}


def at_once(call, n: int) -> list:
    """``call()`` from ``n`` threads released together: what each returned, or raised."""
    start = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def claim_together(folder, n=6):
    """``claim_folder(folder)`` from ``n`` threads at once: their claims (or errors)."""
    return at_once(lambda: claim_folder(folder, MARKER, FIELDS), n)


@pytest.mark.parametrize("round_", range(10))
def test_a_new_folder_claimed_at_once_is_made_once_and_marked_as_made(tmp_path, round_):
    folder = tmp_path / "work"
    claims = claim_together(folder)
    assert all(not isinstance(c, Exception) for c in claims), claims
    assert sum(c.fresh for c in claims) == 1 and all(c.created for c in claims)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]  # no hidden folder left beside it
    assert [p.name for p in folder.iterdir()] == [MARKER]
    assert json.loads((folder / MARKER).read_text())["folder"] == folder.stat().st_ino


@pytest.mark.parametrize("round_", range(10))
def test_an_empty_folder_claimed_at_once_is_marked_once_as_not_made(tmp_path, round_):
    folder = tmp_path / "given"
    folder.mkdir()
    claims = claim_together(folder)
    assert all(not isinstance(c, Exception) for c in claims), claims
    assert not any(c.fresh or c.created for c in claims)
    assert [p.name for p in folder.iterdir()] == [MARKER]


def test_a_folder_that_appears_during_the_claim_is_taken_as_the_other_claims(tmp_path, monkeypatch):
    # the other process publishes its folder between this one's look and its rename
    folder = tmp_path / "work"
    rename = safe_files.rename_folder_new
    other = []

    def other_first(source, target):
        monkeypatch.setattr(safe_files, "rename_folder_new", rename)
        other.append(claim_folder(folder, MARKER, FIELDS))
        rename(source, target)

    monkeypatch.setattr(safe_files, "rename_folder_new", other_first)
    claim = claim_folder(folder, MARKER, FIELDS)
    assert other[0].fresh and other[0].created
    assert claim.created and not claim.fresh and claim.marked == other[0].marked
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
    assert [p.name for p in folder.iterdir()] == [MARKER]


def test_a_folder_being_marked_by_another_process_is_not_foreign(tmp_path):
    folder = tmp_path / "given"
    folder.mkdir()
    (folder / f".{MARKER}.0123456789abcdef.tmp").write_text("{")  # another process, mid-write
    claim = claim_folder(folder, MARKER, FIELDS)
    assert not claim.created and (folder / MARKER).is_file()
    (folder / "user.txt").write_text("mine")
    other = tmp_path / "other"
    other.mkdir()
    (other / f".{MARKER}.0123456789abcdef.tmp").write_text("{")
    (other / "user.txt").write_text("mine")
    with pytest.raises(FolderRefused) as refused:
        claim_folder(other, MARKER, FIELDS)
    assert refused.value.reason == "foreign"
    assert sorted(p.name for p in other.iterdir()) == [f".{MARKER}.0123456789abcdef.tmp", "user.txt"]


@pytest.mark.parametrize("renameat2", ["system", "without"])
def test_renaming_a_folder_never_replaces_one_at_the_target(tmp_path, monkeypatch, renameat2):
    if renameat2 == "without":
        monkeypatch.setattr(safe_files, "_renameat2", None)
    source, empty, full = tmp_path / "source", tmp_path / "empty", tmp_path / "full"
    for folder in (source, empty, full):
        folder.mkdir()
    (full / "a").write_text("a")
    for target in (empty, full):
        with pytest.raises(FileExistsError):
            rename_folder_new(source, target)
    assert source.is_dir() and empty.is_dir() and (full / "a").read_text() == "a"
    rename_folder_new(source, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full", "new"]


def test_part_tasks_opening_one_new_work_folder_at_once_share_it(tmp_path):
    folder = tmp_path / ".out.mkv.stdan-job"
    opened = at_once(lambda: Workspace(folder, ".mkv", shared=True), 4)
    try:
        assert all(isinstance(w, Workspace) for w in opened), opened
        assert sum(w.fresh for w in opened) == 1 and all(w.created for w in opened)
    finally:
        for w in opened:
            if isinstance(w, Workspace):
                w.close()
