"""stdan-cli: space-time video super-resolution with STDAN (Wang et al., TNNLS 2023).

The command line (``stdan``) is a thin layer over this package, one folder per part, in this
layer order (each imports only those after it):

- :mod:`stdan_cli.cli`: the ``stdan`` command.
- :mod:`stdan_cli.api`: the one way in: ``run_upscale(UpscaleRequest)``, ``run_eval``,
  ``run_train``/``run_finetune``, ``run_export``; the command line parses options into a
  request, calls one of them and prints the result.
- :mod:`stdan_cli.jobs`: the one job driver (work folder, resume, assembly) and its in-process
  executor; :mod:`stdan_cli.cluster`: the Ray and ``--part`` executors, ``eval --ray``.
- :mod:`stdan_cli.pipeline`: planning an upscale: options, windows, scenes, tiles, decode/encode threads.
- :mod:`stdan_cli.upscalers`: the named upscalers (``stdan``, ``bicubic``), device and precision;
  :mod:`stdan_cli.video`: decoding and encoding with PyAV, colour and stream copying.
- :mod:`stdan_cli.model`: the network in plain PyTorch, checkpoint loading, one-window inference.

Beside them: :mod:`stdan_cli.weights` (registry, cache, downloads, verification) and
:mod:`stdan_cli.evaluation` (the paper's protocol). Under everything: :mod:`stdan_cli.errors`
(every user-facing error) and :mod:`stdan_cli.safe_files` (files beside the user's).
"""

__version__ = "0.1.0"
