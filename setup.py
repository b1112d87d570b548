"""Build step: ship the top-level ``weights/`` registry inside the package as ``stdan_cli/_registry/``.

All metadata is in pyproject.toml. ``stdan_cli.weights.registry`` reads ``stdan_cli/_registry`` in an
installed wheel and ``weights/`` in a source tree or editable install. MANIFEST.in puts ``weights/``
in the sdist so a wheel built from the sdist has it too.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

REGISTRY_FILES = ("registry.json", "README.md")


class BuildPyWithRegistry(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # editable installs read weights/ from the source tree
        source = Path(__file__).resolve().parent / "weights"
        target = Path(self.build_lib) / "stdan_cli" / "_registry"
        self.mkpath(str(target))
        for name in REGISTRY_FILES:
            self.copy_file(str(source / name), str(target / name))


setup(cmdclass={"build_py": BuildPyWithRegistry})
