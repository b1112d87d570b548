"""The manifest's format: what a work folder written by an earlier stdan-cli holds still reads
back (its option names, its video facts), so its job resumes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from media import make_video

from stdan_cli.cli import main
from stdan_cli.jobs.manifest import Manifest, VideoFacts
from stdan_cli.jobs.strict_json import Damaged

# The names a manifest records the options and the model by (those users type), as format 2 named
# them too (format 3 added the chunks' extension).
OPTION_NAMES = {"--chunk-frames", "--codec", "--compare", "--crf", "--deinterlace", "--end", "--mode", "--outscale",
                "--pix-fmt", "--preset", "--scene-threshold", "--scenes", "--start", "--stride", "--vf", "--window",
                "encoder options", "output container", "tiles (--tile/--memory-budget)"}
MODEL_NAMES = {"--model", "--precision", "weights sha256"}


def _manifest(video: dict) -> dict:
    return {"format": 3, "stdan_cli": "0.1.0", "input": {"size": 1}, "options": {"--mode": "spacetime"},
            "model": {"--model": "bicubic"}, "video": video, "planned": True, "chunks": [], "left_out": ["--crf"],
            "extension": ".mkv"}


@pytest.mark.parametrize("video, facts", [
    ({}, VideoFacts()),  # written before planning
    ({"end_seconds": 2.5, "keep_audio": True, "shift": True, "start_seconds": 0.5}, VideoFacts(True, True, 0.5, 2.5)),
    ({"end_seconds": None, "keep_audio": False, "shift": False, "start_seconds": None}, VideoFacts(False)),
])
def test_the_video_facts_of_a_written_manifest_read_back(video, facts):
    manifest = Manifest.from_data(_manifest(video))
    assert manifest.video == facts
    assert Manifest.from_data(json.loads(manifest.to_json())).video == facts


def test_a_video_fact_of_the_wrong_kind_is_damage():
    with pytest.raises(Damaged, match="video.shift is not true or false"):
        Manifest.from_data(_manifest({"shift": "yes"}))


def test_a_job_records_its_choices_by_the_names_of_earlier_manifests(tmp_path):
    """A --part task plans the whole job and writes its manifest; its names are the ones
    manifests have always used, so what a resume compares keeps its meaning."""
    src = make_video(tmp_path / "in.mkv", n_frames=12, codec="ffv1", pix_fmt="yuv444p")
    work = tmp_path / "work"
    result = CliRunner().invoke(main, ["upscale", str(src), str(tmp_path / "out.mkv"), "--model", "bicubic",
                                       "--chunk-frames", "4", "--start", "0.2", "--work-dir", str(work),
                                       "--part", "1/2", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads((work / "manifest.json").read_text())
    assert set(data["options"]) == OPTION_NAMES and set(data["model"]) == MODEL_NAMES
    assert set(data["left_out"]) == {"--crf", "--pix-fmt", "--preset", "--codec"}
    assert set(data["video"]) == {"keep_audio", "shift", "start_seconds", "end_seconds"} and data["video"]["shift"]
