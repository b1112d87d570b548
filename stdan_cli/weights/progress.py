"""A rich download progress bar on stderr (silent with ``quiet``), also usable as a tqdm class."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class DownloadProgress:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> "DownloadProgress":
        if not self.quiet:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start(self, label: str, total: int | None, completed: int = 0) -> None:
        """Begin (or restart, e.g. after a resume) the bar for one transfer."""
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task(label, total=total, completed=completed)
        else:
            self._progress.reset(self._task, total=total, completed=completed, description=label)

    def advance(self, n: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def tqdm_class(self):
        """A tqdm class that draws on this bar (for ``hf_hub_download(tqdm_class=...)``)."""
        from tqdm.auto import tqdm

        reporter = self

        class _RichTqdm(tqdm):
            def __init__(self, *args, **kwargs):
                kwargs.pop("name", None)
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)
                reporter.start(str(kwargs.get("desc") or "download"), kwargs.get("total"), kwargs.get("initial") or 0)

            def update(self, n=1):
                reporter.advance(n or 0)
                return super().update(n)

        return _RichTqdm
