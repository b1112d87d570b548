"""``python -m stdan_cli``: the ``stdan`` command."""

from stdan_cli.cli import main

if __name__ == "__main__":
    main()
