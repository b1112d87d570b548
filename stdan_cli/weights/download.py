"""Fetch a registry checkpoint from its source, verify it, and move it into the cache.

Sources: Google Drive (with its confirmation page), a Hugging Face Hub repo (through
``huggingface_hub.hf_hub_download``, so HF_HOME, HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply),
any URL, or a local file. A download writes ``<dir>/<filename>.part`` (a regular file, opened
without following a link, so that a dropped HTTP transfer resumes from it a few times within one
run, and again on the next run); a copy (``--from-file``, the Hub's cached file) is written to a
random name created exclusively beside the target. That file is verified
(:func:`verify_checkpoint`) and renamed to its final name: a link at the target or at the
``.part`` name is never followed, never written through, never installed.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from stdan_cli import __version__
from stdan_cli.errors import CheckpointError, DownloadError, DownloadInterrupted, OptionError, WeightsNotFound
from stdan_cli.safe_files import NotRegular, copy_new, kind_of, remove_file
from stdan_cli.weights import gdrive
from stdan_cli.weights.http import make_client, stream_to_part
from stdan_cli.weights.progress import DownloadProgress
from stdan_cli.weights.registry import WeightsEntry, get_entry, load_registry
from stdan_cli.weights.store import (
    cache_lock,
    check_sidecar,
    imported_path,
    install_file,
    part_path,
    read_sidecar,
    record_sha256,
    recorded_sha256,
    sha256_file,
    valid_user_name,
    weights_dir,
    write_sidecar,
)
from stdan_cli.weights.verify import verify_checkpoint


@dataclass(frozen=True)
class Source:
    kind: str  # "gdrive" | "hf" | "url" | "file"
    location: str  # Drive file id, HF repo id, URL or path
    filename: str | None = None  # HF only
    revision: str | None = None  # HF only

    def describe(self) -> str:
        if self.kind == "gdrive":
            return f"Google Drive file {self.location}"
        if self.kind == "hf":
            rev = f"@{self.revision}" if self.revision else ""
            return f"hf://{self.location}/{self.filename}{rev}"
        return self.location


@dataclass(frozen=True)
class DownloadResult:
    entry: WeightsEntry
    path: Path
    sha256: str
    size: int
    num_params: int | None
    already_present: bool
    source: str
    recorded_in: Path | None = None  # the registry had no sha256: this file's was recorded there now


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to a true value, read now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def entry_sources(entry: WeightsEntry) -> list[Source]:
    """The registry entry's sources, in the order they are tried (Hub, Drive, URL)."""
    sources = []
    if entry.hf_repo_id:
        sources.append(Source("hf", entry.hf_repo_id, entry.hf_filename or entry.filename, entry.hf_revision))
    if entry.google_drive_id:
        sources.append(Source("gdrive", entry.google_drive_id))
    if entry.url:
        sources.append(Source("url", entry.url))
    return sources


def manual_advice(entry: WeightsEntry) -> str:
    where = entry.page_url
    alt = f" or {entry.manual_download}" if entry.manual_download else ""
    fetch = f"download it by hand from {where}{alt} and " if where else ""
    return f"{fetch}run `stdan download-weights {entry.name} --from-file PATH`"


def check_present(entry: WeightsEntry, target: Path) -> str | None:
    """The sha256 of ``target`` if it is present and valid, else None.

    Valid: its sha256 equals the recorded sidecar (and the registry's, if any). A file without a
    sidecar (copied in by hand) is fully verified once and then gets one.
    """
    if kind_of(target) != "file":  # a link there is not ours: it is replaced by a verified file
        return None
    recorded = read_sidecar(target)
    if recorded is None:
        try:
            digest = verify_checkpoint(target, entry).sha256
        except CheckpointError:
            return None
        write_sidecar(target, digest)
        return digest
    digest = sha256_file(target)
    if digest != recorded or (entry.sha256 and digest != entry.sha256.lower()):
        return None
    return digest


# --- one function per kind of source: each leaves the complete file in ``part`` (a download)
# --- or returns a new file of ours holding it (a copy) ------------------------------------------


def _fetch_http(source: Source, part: Path, progress: DownloadProgress, *, attempts: int, gdrive_url: str | None,
                retry_wait: float) -> None:
    label = source.describe() if source.kind == "url" else "Google Drive"
    with make_client() as client:
        for attempt in range(1, attempts + 1):
            try:
                if source.kind == "gdrive":
                    _fetch_gdrive(client, source.location, part, progress, gdrive_url)
                else:
                    page = stream_to_part(client, source.location, part, progress=progress, label=label)
                    if page is not None:
                        raise DownloadError(
                            f"{source.location} returned an HTML web page (HTTP {page.status}: "
                            f"{gdrive.page_summary(page.text)}) instead of a checkpoint"
                        )
                return
            except DownloadInterrupted as exc:
                if attempt == attempts:
                    raise DownloadInterrupted(f"{exc}; run the same command again to resume") from None
                time.sleep(retry_wait * attempt)


def _fetch_gdrive(client, file_id: str, part: Path, progress: DownloadProgress, base: str | None) -> None:
    """The first request expects the confirmation page (no Range); the confirmed URL resumes ``part``."""
    url, params = gdrive.first_request(file_id, base)
    for step in range(3):
        page = stream_to_part(client, url, part, params=params, progress=progress, label="Google Drive", resume=step > 0)
        if page is None:
            return
        request = gdrive.confirmation_request(page.text, page.url, file_id, dict(client.cookies))
        if request is None:
            raise DownloadError(
                f"Google Drive returned a web page instead of the file (HTTP {page.status}: "
                f"\"{gdrive.page_summary(page.text)}\"); its download quota may be exceeded or the file unshared, try again later"
            )
        url, params = request
    raise DownloadError("Google Drive kept answering with confirmation pages instead of the file")


def _fetch_hf(source: Source, target: Path, progress: DownloadProgress, *, endpoint: str | None,
              cache_dir: str | os.PathLike | None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = hf_hub_download(
            source.location,
            source.filename,
            revision=source.revision,
            endpoint=endpoint,
            cache_dir=cache_dir,
            library_name="stdan-cli",
            library_version=__version__,
            tqdm_class=progress.tqdm_class(),
        )
    except LocalEntryNotFoundError:
        raise DownloadError(
            f"{source.describe()} is not in the Hugging Face cache and the Hub cannot be reached "
            "(HF_HUB_OFFLINE=1 or no network)"
        ) from None
    except EntryNotFoundError:
        raise DownloadError(f"{source.describe()}: no such file in that repository/revision") from None
    except HfHubHTTPError as exc:
        raise DownloadError(f"{source.describe()}: {str(exc).splitlines()[0]}") from None
    except (OSError, ValueError) as exc:  # network errors, bad repo ids
        raise DownloadError(f"{source.describe()}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return _copy_beside(Path(path), target, source.describe())  # the Hub cache keeps its copy


def _fetch_file(source: Source, target: Path) -> Path:
    src = Path(source.location).expanduser()
    if not src.is_file():
        raise WeightsNotFound(f"--from-file {src} does not exist or is not a file")
    return _copy_beside(src, target, str(src))


def _copy_beside(src: Path, target: Path, what: str) -> Path:
    """A copy of ``src`` under a new random name of ours beside ``target``, to be verified and renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return copy_new(src, target.parent, target.name)
    except NotRegular:
        raise WeightsNotFound(f"{what} is not a regular file (a pipe or a device)") from None
    except OSError as exc:
        raise DownloadError(f"cannot copy {what} into {target.parent}: {exc.strerror or exc}") from None


# --- the whole operation ------------------------------------------------------------------------


def holds_the_cache_lock(fn):
    """Run ``fn`` (:func:`download_weights`) holding the cache's lock for its file: several
    processes starting at once with an empty cache (array tasks) download it once; the others
    wait, then find it present and verified."""

    @functools.wraps(fn)
    def locked(name: str | None = None, *, directory: str | os.PathLike | None = None, **kwargs):
        known = name is None or name in load_registry().entries
        target = weights_dir(directory) / (get_entry(name).filename if known else f"{name}.pth")  # --force NAME
        with cache_lock(target):
            return fn(name, directory=directory, **kwargs)

    return locked


@holds_the_cache_lock
def download_weights(
    name: str | None = None,
    *,
    directory: str | os.PathLike | None = None,
    url: str | None = None,
    from_file: str | os.PathLike | None = None,
    repo_id: str | None = None,
    filename: str | None = None,
    revision: str | None = None,
    force: bool = False,
    quiet: bool = False,
    attempts: int = 3,
    retry_wait: float = 1.0,
    gdrive_url: str | None = None,
    hf_endpoint: str | None = None,
    hf_cache_dir: str | os.PathLike | None = None,
) -> DownloadResult:
    """Make the named (default) checkpoint present and verified in the cache; return where it is.

    ``from_file`` > ``url`` > ``repo_id`` (with ``filename``, ``revision``) override the
    registry's sources. Already present and valid (and not ``force``): nothing is downloaded.
    ``attempts``, ``retry_wait``, ``gdrive_url``, ``hf_endpoint``, ``hf_cache_dir``: how the
    sources are reached (:class:`Transport`).
    """
    cache = weights_dir(directory)
    if name and name not in load_registry().entries and from_file is not None and force:
        return import_under_own_name(name, from_file, cache)
    entry = get_entry(name)
    recorded = recorded_sha256(cache, entry.name) if not entry.sha256 else None
    entry = replace(entry, sha256=entry.sha256 or recorded)  # what every file under this name must match
    target = cache / entry.filename
    check_sidecar(target)  # before anything is fetched
    if not force:
        digest = check_present(entry, target)
        if digest is not None:
            return DownloadResult(entry, target, digest, target.stat().st_size, entry.num_params, True, str(target))
    sources = chosen_sources(entry, from_file, url, repo_id, filename, revision)
    transport = Transport(attempts, retry_wait, gdrive_url, hf_endpoint, hf_cache_dir)
    with DownloadProgress(quiet) as progress:
        return _first_that_verifies(entry, sources, target, cache, progress, transport, from_file)


@dataclass(frozen=True)
class Transport:
    """How sources are reached: tries per HTTP source and the wait between them, and the
    Google Drive and Hugging Face Hub endpoints and Hub cache (None: their defaults)."""

    attempts: int = 3
    retry_wait: float = 1.0
    gdrive_url: str | None = None
    hf_endpoint: str | None = None
    hf_cache_dir: str | os.PathLike | None = None


def chosen_sources(entry: WeightsEntry, from_file, url, repo_id, filename, revision) -> list[Source]:
    """Where the file comes from: the user's file, URL or Hub repo, else the registry's sources;
    an error when there is none, or when only the network could give it while offline."""
    if from_file is not None:
        sources = [Source("file", str(from_file))]
    elif url:
        sources = [Source("url", url)]
    elif repo_id:
        sources = [Source("hf", repo_id, filename or entry.hf_filename or entry.filename, revision)]
    else:
        sources = entry_sources(entry)
    if not sources:
        raise DownloadError(f"'{entry.name}' has no download source in the registry; {manual_advice(entry)}")
    if hub_offline() and all(s.kind in ("gdrive", "url") for s in sources):
        raise WeightsNotFound(
            f"offline (HF_HUB_OFFLINE is set): cannot download '{entry.name}' from {sources[0].describe()}; "
            f"unset HF_HUB_OFFLINE, or {manual_advice(entry)}"
        )
    return sources


def _fetch(source: Source, target: Path, part: Path, progress: DownloadProgress, transport: Transport) -> Path:
    """The fetched file: a download's resumable ``part``, or a copy's own new file beside ``target``."""
    if source.kind == "file":
        return _fetch_file(source, target)
    if source.kind == "hf":
        return _fetch_hf(source, target, progress, endpoint=transport.hf_endpoint, cache_dir=transport.hf_cache_dir)
    _fetch_http(source, part, progress, attempts=transport.attempts, gdrive_url=transport.gdrive_url,
                retry_wait=transport.retry_wait)
    return part


def _first_that_verifies(entry: WeightsEntry, sources: list[Source], target: Path, cache: Path,
                         progress: DownloadProgress, transport: Transport, from_file) -> DownloadResult:
    """Try ``sources`` in order until one gives a file that verifies, and install it at
    ``target``; an error naming every source's failure otherwise."""
    part = part_path(target)
    errors = []
    resumable = False  # whether the last source tried stopped part-way (its .part is kept)
    for source in sources:
        fetched = part  # a download's resumable .part, or a copy's own new file
        try:
            fetched = _fetch(source, target, part, progress, transport)
            verified = verify_checkpoint(fetched, entry, what=f"the file from {source.describe()}")
        except DownloadInterrupted as exc:  # keep the .part: the next run resumes it
            errors.append(str(exc))
            resumable = True
            continue
        except (DownloadError, CheckpointError) as exc:
            remove_file(fetched)
            errors.append(str(exc))
            resumable = False
            continue
        except BaseException:
            if fetched != part:
                remove_file(fetched)  # a copy can be redone; a download .part stays resumable
            raise
        install_file(fetched, target, verified.sha256)
        recorded_in = record_sha256(cache, entry.name, verified.sha256) if not entry.sha256 else None
        return DownloadResult(entry, target, verified.sha256, verified.size, verified.num_params, False,
                              source.describe(), recorded_in)
    message = " | ".join(errors)
    if resumable:  # the last source stopped part-way: its message says to run again
        raise DownloadError(message)
    advice = manual_advice(entry) if from_file is None else (
        f"to use this file anyway, import it under a name of your own: "
        f"`stdan download-weights MY-NAME --from-file {from_file} --force`, then --weights MY-NAME")
    raise DownloadError(f"{message}; {advice}")


def import_under_own_name(name: str, from_file: str | os.PathLike, cache: Path) -> DownloadResult:
    """``--from-file F --force`` under a name that is not the registry's: the file is checked for
    what every checkpoint must be (safe to read, a complete STDAN state_dict, finite values), not
    against any registry entry, and kept as ``imported/<name>.pth`` for ``--weights NAME``."""
    if not valid_user_name(name):
        raise OptionError(f"'{name}' cannot name a checkpoint: use letters, digits, '.', '_' and '-' (at most 64)")
    target = imported_path(cache, name)
    check_sidecar(target)  # before anything is copied
    fetched = _fetch_file(Source("file", str(from_file)), target)
    try:
        verified = verify_checkpoint(fetched, None, what=str(from_file))
    except BaseException:
        remove_file(fetched)
        raise
    install_file(fetched, target, verified.sha256)
    entry = WeightsEntry(name=name, filename=target.name, description=f"imported from {from_file} with --force")
    return DownloadResult(entry, target, verified.sha256, verified.size, verified.num_params, False, str(from_file))
