"""The API as the way in: one request, one call; progress and cancelling apart."""

from __future__ import annotations

import pytest
from media import make_video

from stdan_cli.api import CancelToken, Distribution, ModelChoice, UpscaleRequest, run_upscale
from stdan_cli.api.upscale import UpscaleOptions
from stdan_cli.errors import JobInterrupted, OptionError
from stdan_cli.progress import RunProgress

BICUBIC = ModelChoice(name="bicubic")


def test_run_upscale_makes_the_output_from_a_request(tmp_path):
    src = make_video(tmp_path / "in.mkv", n_frames=7, codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mkv"
    lines: list[str] = []
    result = run_upscale(UpscaleRequest((str(src),), str(out), BICUBIC, UpscaleOptions(scene_threshold=0)),
                         notify=lines.append)
    assert out.is_file() and result.summary.frames_out == 13 and result.summary.frames_in == 7
    assert (result.model, result.cut_times, result.part_chunks) == ("bicubic", [], None)


def test_a_cancelled_token_stops_the_run_and_keeps_the_chunks_done(tmp_path):
    """The caller's token, set while the last of three chunks is made, stops the run as Ctrl-C
    does: the chunks done are kept and the same request resumes from them."""
    src = make_video(tmp_path / "in.mkv", n_frames=12, codec="ffv1", pix_fmt="yuv444p")
    out, work = tmp_path / "out.mkv", tmp_path / "work"
    token = CancelToken()

    class CancelsAfterTheFirstFrames(RunProgress):
        def advance(self, done: int) -> None:
            if done >= 20:  # the last window (the third chunk's) has started
                token.cancel()
            super().advance(done)

    options = UpscaleOptions(scene_threshold=0, chunk_frames=4, work_dir=work)
    with pytest.raises(JobInterrupted, match="chunk\\(s\\) done are kept"):
        run_upscale(UpscaleRequest((str(src),), str(out), BICUBIC, options), CancelsAfterTheFirstFrames(),
                    cancel=token)
    assert not out.exists() and any(work.iterdir())
    result = run_upscale(UpscaleRequest((str(src),), str(out), BICUBIC, options))  # the same request resumes
    assert result.summary.resumed >= 1 and out.is_file()


def test_a_request_with_several_inputs_goes_to_the_batch_functions(tmp_path):
    with pytest.raises(OptionError, match="plan_upscale_batch"):
        run_upscale(UpscaleRequest(("a.mkv", "b.mkv"), str(tmp_path), BICUBIC))


@pytest.mark.parametrize("args, message", [
    (dict(ray_workers=2), "--ray-workers needs --ray"),
    (dict(shared_input=True), "--shared-input needs --ray"),
    (dict(ray_address="auto", part="1/2"), "use one"),
    (dict(part="3/2"), "--part"),
])
def test_the_distribution_options_are_checked_together(args, message):
    with pytest.raises(OptionError, match=message):
        Distribution.of(**args)
