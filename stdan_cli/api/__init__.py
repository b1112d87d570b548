"""The Python API of stdan-cli: what the command line calls, importable as it is. The command
line only parses options into a request, calls one function here and prints its result.

- :func:`run_upscale` (:class:`UpscaleRequest`: inputs, output, :class:`ModelChoice`, the
  pipeline's :class:`~stdan_cli.pipeline.UpscaleOptions`, :class:`Distribution`): build the
  upscaler, pick the executor (this process, Ray, ``--part``), plan and run, reporting through
  :class:`~stdan_cli.progress.RunProgress` and stopping on a :class:`CancelToken`.
  :func:`plan_upscale_batch`, :func:`run_upscale_batch`: several inputs into a folder.
  :func:`upscale_video`: one input with an upscaler built by the caller.
- :func:`run_eval` (:class:`EvalRequest`): ``stdan eval``; :func:`run_train`,
  :func:`run_finetune`: ``stdan train`` and ``stdan finetune``; :func:`run_export`: ``stdan export``.
- :func:`load_model`, :func:`describe_checkpoint`, :func:`upscale_window`: the network as a library.
- :mod:`stdan_cli.api.choices`: the tables the options are read from (no PyTorch).

Layer order: cli -> api -> jobs and cluster -> pipeline -> upscalers and video -> model.
Importing this package loads nothing heavy: each name is imported on first use.
"""

from stdan_cli._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("BatchItem", "BatchResult", "check_batch", "plan_batch", "run_batch"), "batch"),
    "CancelToken": "cancel",
    **dict.fromkeys(("Distribution", "RayWorkers", "ray_workers"), "distribute"),
    **dict.fromkeys(("EvalRequest", "EvalRun", "prepare_eval", "run_eval"), "eval"),
    **dict.fromkeys(("describe_checkpoint", "load_model"), "model"),
    **dict.fromkeys(("ExportRequest", "run_export"), "export"),
    **dict.fromkeys(("is_main_process", "run_finetune", "run_train", "starting_weights"), "train"),
    **dict.fromkeys(("ModelChoice", "prepare_backend"), "upscaler"),
    **dict.fromkeys(("BatchRun", "UpscaleRequest", "UpscaleResult", "check_request", "cut_times", "files_read",
                     "is_batch", "open_executor", "plan_upscale_batch", "run_upscale", "run_upscale_batch",
                     "upscale_video"), "upscale"),
}
_lookup = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str) -> object:
    if name == "upscale_window":
        from stdan_cli.model import upscale_window

        return upscale_window
    if name == "JobSummary":
        from stdan_cli.jobs import JobSummary

        return JobSummary
    return _lookup(name)


__all__ = sorted([*_EXPORTS, "JobSummary", "upscale_window"])
