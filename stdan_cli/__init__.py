"""stdan-cli: space-time video super-resolution with STDAN (Wang et al., TNNLS 2023).

The command line (``stdan``) is a thin layer over this package, one folder per part:

- :mod:`stdan_cli.model`: the network in plain PyTorch, checkpoint loading, one-window inference.
- :mod:`stdan_cli.upscalers`: the named upscalers (``stdan``, ``bicubic``), device and precision.
- :mod:`stdan_cli.pipeline`: planning and running an upscale: windows, tiles, decode/encode threads.
- :mod:`stdan_cli.video`: decoding and encoding with PyAV, colour and stream copying.
- :mod:`stdan_cli.weights`: the checkpoint registry, cache, downloads and verification.
- :mod:`stdan_cli.evaluation`: the paper's evaluation protocol.
- :mod:`stdan_cli.cli`: the ``stdan`` command; :mod:`stdan_cli.errors`: every user-facing error.
"""

__version__ = "0.1.0"
