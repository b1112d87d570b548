"""stdan-cli: space-time video super-resolution with STDAN (Wang et al., TNNLS 2023).

The command line (``stdan``) is a thin layer over this package:

- :mod:`stdan_cli.model` -- the network in plain PyTorch, checkpoint loading and one-window inference.
"""

__version__ = "0.1.0"
