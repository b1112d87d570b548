"""Scene cuts: detection on synthetic footage, scene files, and how cuts shape the plan."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from scene_media import fade_through_black, pan, shot_frame, shots, with_flash

from stdan_cli.errors import SceneFileError
from stdan_cli.jobs.plan import (
    ChunkEnd,
    JobPlanner,
    RepeatTask,
    WindowTask,
)
from stdan_cli.pipeline import UpscaleOptions
from stdan_cli.pipeline.scenes import (
    CutDetector,
    ListedCuts,
    NoCuts,
    SceneList,
    cut_source,
    read_scene_list,
)
from stdan_cli.pipeline.timecode import parse_time
from stdan_cli.video.decode import Frame


def tensor(rgb):
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255


def detect(frames, threshold=27.0):
    detector = CutDetector(threshold)
    cuts = []
    for i, f in enumerate(frames):
        cuts += detector.push(i, i / 25, tensor(f))
    return cuts + detector.finish()


def test_every_hard_cut_is_found_including_a_one_frame_shot():
    frames, true_cuts = shots([7, 5, 1, 9, 2, 6])
    assert detect(frames) == true_cuts == [7, 12, 13, 22, 24]


@pytest.mark.parametrize("at", [1, 5, 10])
def test_a_one_frame_flash_is_not_a_cut(at):
    frames, _ = shots([12])
    assert detect(with_flash(frames, at)) == []


def test_a_flash_next_to_a_real_cut_leaves_only_the_cut():
    frames, cuts = shots([8, 8])
    assert detect(with_flash(frames, 3)) == cuts == [8]


def test_a_fade_through_black_and_a_pan_are_not_cuts():
    assert detect(fade_through_black(0, 1, before=5, fade=8, after=5)) == []
    assert detect(pan(30, speed=2.0)) == []
    # the same pan cut into another shot is still found
    frames = pan(10) + [shot_frame(2, t) for t in range(6)]
    assert detect(frames) == [10]


def test_threshold_scale_and_off():
    frames, cuts = shots([6, 6])
    assert detect(frames, threshold=27) == cuts
    assert detect(frames, threshold=250) == []  # the score is at most 255
    assert isinstance(cut_source(0), NoCuts)


def test_parse_time():
    assert parse_time("90") == 90 and parse_time("2.5") == 2.5
    assert parse_time("1:30") == 90 and parse_time("01:02:03.250") == pytest.approx(3723.25)
    for bad in ["-1", "1:75", "abc", "nan"]:
        with pytest.raises(ValueError):
            parse_time(bad)


def test_scene_files(tmp_path):
    plain = tmp_path / "cuts.txt"
    plain.write_text("# scene starts\n0\n12\n\n00:00:01.5\n2.25\n")
    scenes = read_scene_list(plain)
    assert scenes.frames == {0, 12} and scenes.times == (1.5, 2.25)
    csv = tmp_path / "scenes.csv"
    csv.write_text(
        "Timecode List:,00:00:02.000,00:00:03.000\n"
        "Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,End Timecode,End Time (seconds),"
        "Length (frames),Length (timecode),Length (seconds)\n"
        "1,1,00:00:00.000,0.000,50,00:00:02.000,2.000,50,00:00:02.000,2.000\n"
        "2,51,00:00:02.000,2.000,75,00:00:03.000,3.000,25,00:00:01.000,1.000\n"
        "3,76,00:00:03.000,3.000,100,00:00:04.000,4.000,25,00:00:01.000,1.000\n"
    )
    assert read_scene_list(csv).frames == {50, 75}  # list-scenes numbers frames from 1
    bad = tmp_path / "bad.txt"
    bad.write_text("12\nscene two\n")
    with pytest.raises(SceneFileError, match="line 2"):
        read_scene_list(bad)
    with pytest.raises(SceneFileError, match="does not exist"):
        read_scene_list(tmp_path / "none.txt")


def test_listed_times_start_a_scene_at_the_first_frame_at_or_after_them():
    source = ListedCuts(SceneList(frozenset({3}), (0.0, 0.5, 0.61)))
    cuts = [c for i in range(10) for c in source.push(i, i * 0.2, None)]  # frames at 0, 0.2, 0.4, ...
    assert cuts == [3, 4]  # 0.5 -> frame 3 (0.6) and frame 3 listed; 0.61 -> frame 4 (0.8); 0 is the start


def plan(n, cuts=(), **settings):
    source = ListedCuts(SceneList(frozenset(cuts))) if cuts else NoCuts()
    chunk_frames = settings.pop("chunk_frames", 250)
    planner = JobPlanner(UpscaleOptions(**settings), chunk_frames, source, Fraction(1, 10))
    tasks = []
    for i in range(n):
        tasks += planner.push(Frame(torch.zeros(3, 2, 2), i, 1))
    return tasks + planner.finish(), planner


def outputs(tasks):
    """position -> how it is made (the window's inputs, its index among the window's outputs) or 'repeat'."""
    made = {}
    for t in tasks:
        if isinstance(t, WindowTask):
            for j, pts in t.keep:
                made[pts] = (t.window.inputs, t.skip + j)
        elif isinstance(t, RepeatTask):
            made[t.pts] = "repeat"
    return made


@pytest.mark.parametrize("cuts", [(), (5,), (5, 6, 11), (1, 2, 3)])
def test_windows_never_span_a_cut_and_scenes_are_planned_as_their_own_clips(cuts):
    n = 14
    tasks, planner = plan(n, cuts)
    bounds = [0, *cuts, n]
    scene_of = {i: s for s in range(len(bounds) - 1) for i in range(bounds[s], bounds[s + 1])}
    for t in tasks:
        if isinstance(t, WindowTask):
            assert len({scene_of[i] for i in t.window.inputs}) == 1, t.window
    made = outputs(tasks)
    assert sorted(made) == list(range(2 * n - 1))  # the frame count of a run without cuts
    assert [p for p, how in made.items() if how == "repeat"] == [2 * c - 1 for c in cuts]
    assert planner.scenes == len(cuts) + 1
    # each scene's windows are those of a clip of its own
    for s in range(len(bounds) - 1):
        a, b = bounds[s], bounds[s + 1]
        alone, _ = plan(b - a)
        mine = [t.window for t in tasks if isinstance(t, WindowTask) and scene_of[t.window.start] == s]
        theirs = [t.window for t in alone if isinstance(t, WindowTask)]
        assert [tuple(i - a for i in w.inputs) for w in mine] == [w.inputs for w in theirs]


@pytest.mark.parametrize("chunk_frames", [1, 2, 3, 5, 100])
def test_any_chunking_makes_the_same_frames_the_same_way(chunk_frames):
    one, _ = plan(17, (7,), chunk_frames=1000)
    many, _ = plan(17, (7,), chunk_frames=chunk_frames)
    assert outputs(many) == outputs(one)
    ends = [t.spec for t in many if isinstance(t, ChunkEnd)]
    assert sum(c.outputs for c in ends) == 33 and [c.index for c in ends] == list(range(len(ends)))
    for spec in ends:  # a chunk is whole windows of one scene, at least one window
        assert (spec.first_frame < 7) == (spec.last_frame < 7)
        assert spec.last_frame - spec.first_frame + 1 >= 4


def test_a_range_plans_the_full_runs_windows():
    full, _ = plan(20, (9,))
    ranged, planner = plan(20, (9,), start=0.55, end=1.25)  # frames 6..12 (0.6 .. 1.2)
    by_pos_full = {}
    for t in full:
        if isinstance(t, WindowTask):
            for j, pts in t.keep:
                by_pos_full[pts] = t.window
    got = {}
    for t in ranged:
        if isinstance(t, WindowTask):
            for j, pts in t.keep:
                got[pts + 12] = t.window  # a range starts at 0; frame 6 is position 12
    assert sorted(got) == [p for p in range(12, 25) if p != 17]  # 17: the repeat at the cut
    assert all(got[p] == by_pos_full[p] for p in got)
    assert planner.range_frames == 7
