"""Temporal windows and spatial tiles."""

from __future__ import annotations

import pytest

from stdan_cli.errors import OptionError
from stdan_cli.pipeline.tiles import auto_tile, plan_tiles
from stdan_cli.pipeline.windows import Window, WindowScheduler, window_count


def plan_windows(n_frames: int, window: int = 4, stride: int = 3) -> list[Window]:
    """All windows the streaming scheduler yields for a video of ``n_frames`` frames."""
    sched: WindowScheduler[int] = WindowScheduler(window, stride)
    wins = [w for i in range(n_frames) for w, _ in sched.push(i)]
    return wins + [w for w, _ in sched.finish()]


def outputs_covered(n, window=4, stride=3):
    positions = []
    for w in plan_windows(n, window, stride):
        positions += list(range(w.first_output, w.first_output + w.emit))
    return positions


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 25])
@pytest.mark.parametrize("window,stride", [(4, 3), (4, 2), (4, 1), (5, 2), (2, 1)])
def test_every_output_exactly_once_in_order(n, window, stride):
    assert outputs_covered(n, window, stride) == list(range(2 * n - 1))


def test_official_scheme():
    wins = plan_windows(10)
    assert [(w.start, w.skip, w.emit) for w in wins] == [(0, 0, 7), (3, 1, 6), (6, 1, 6)]
    last = plan_windows(9)[-1]  # end-aligned: starts at 5, outputs up to frame 6 already exist
    assert (last.start, last.inputs, last.skip, last.emit) == (5, (5, 6, 7, 8), 3, 4)


def test_short_videos_repeat_the_last_frame():
    assert [(w.inputs, w.emit) for w in plan_windows(1)] == [((0, 0, 0, 0), 1)]
    assert [(w.inputs, w.emit) for w in plan_windows(2)] == [((0, 1, 1, 1), 3)]
    assert [(w.inputs, w.emit) for w in plan_windows(3)] == [((0, 1, 2, 2), 5)]


def test_streaming_holds_at_most_one_window():
    sched = WindowScheduler(4, 3)
    for i in range(100):
        sched.push(i)
        assert len(sched.buffer) <= 4


def test_bad_window_settings():
    with pytest.raises(OptionError, match="stride"):
        plan_windows(10, 4, 4)
    with pytest.raises(OptionError, match="window"):
        plan_windows(10, 1, 1)


@pytest.mark.parametrize("h,w,tile,overlap", [(30, 44, 16, 8), (68, 160, 32, 24), (17, 9, 8, 4), (64, 64, 64, 8)])
def test_tiles_cover_the_frame_once_and_stay_on_the_grid(h, w, tile, overlap):
    tiles = plan_tiles(h, w, tile, overlap, 8)
    covered = [[0] * w for _ in range(h)]
    for t in tiles:
        assert t.y0 % 8 == 0 and t.x0 % 8 == 0
        assert t.y0 <= t.core_y0 < t.core_y1 <= t.y1 <= h and t.x0 <= t.core_x0 < t.core_x1 <= t.x1 <= w
        assert t.core_y0 - t.y0 >= min(overlap, t.core_y0) - 7 and t.y1 - t.core_y1 >= min(overlap, h - t.core_y1)
        for y in range(t.core_y0, t.core_y1):
            for x in range(t.core_x0, t.core_x1):
                covered[y][x] += 1
    assert all(c == 1 for row in covered for c in row)


def test_auto_tile_from_budget():
    assert auto_tile(68, 160, 28_000, 4 * 2**30, 24) is None
    tile = auto_tile(1080, 1920, 28_000, 2**30, 24)
    assert tile % 8 == 0 and (tile + 48) ** 2 * 28_000 <= 2**30


@pytest.mark.parametrize("window,stride", [(4, 3), (4, 2), (4, 1), (5, 2), (2, 1)])
def test_window_count_is_what_the_scheduler_makes(window, stride):
    # the ETA's count of windows left (issue 32): the last, end-aligned window counts as one
    for n in range(0, 40):
        assert window_count(n, window, stride) == len(plan_windows(n, window, stride)), n
