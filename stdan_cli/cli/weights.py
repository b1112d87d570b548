"""``stdan download-weights``: fetch, verify and cache a checkpoint, or list the known ones."""

from __future__ import annotations

import click


def _list(directory) -> None:
    from stdan_cli.api.weights import (
        default_weights_name,
        human_size,
        imported_checkpoints,
        list_entries,
        read_sidecar,
        weights_dir,
    )

    cache = weights_dir(directory)
    default = default_weights_name()
    click.echo(f"Known STDAN checkpoints (cache: {cache}):")
    for entry in list_entries():
        path = cache / entry.filename
        if path.is_file():
            size = human_size(path.stat().st_size)
            status = "present" if read_sidecar(path) else "present, unverified"
        else:
            size = f"~{human_size(entry.approx_size_bytes)}" if entry.approx_size_bytes else "size unknown"
            status = "missing"
        mark = "*" if entry.name == default else " "
        click.echo(f"{mark} {entry.name:<16} {status:<19} {size:>12}  {path}")
        click.echo(f"    {entry.description}")
    imported = imported_checkpoints(cache)
    if imported:
        click.echo("Imported under your own names (with --from-file NAME --force; use --weights NAME):")
        for name, path in imported:
            status = "present" if read_sidecar(path) else "present, unverified"
            click.echo(f"  {name:<16} {status:<19} {human_size(path.stat().st_size):>12}  {path}")
    click.echo("(* = default; get one with `stdan download-weights [NAME]`)")


@click.command("download-weights")
@click.argument("name", required=False, metavar="[NAME]")
@click.option("--list", "list_", is_flag=True, help="List the known checkpoints, whether each is present, with sizes and paths, and exit.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Directory to store checkpoints in. Default: $STDAN_HOME/weights, else the user cache dir (e.g. ~/.cache/stdan/weights).")
@click.option("--url", default=None, help="Download the file from this URL instead of the registry's source. Default: none (use the registry).")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False), default=None,
              help="Import a checkpoint you downloaded by hand (it is verified and copied into the cache). Default: none.")
@click.option("--repo-id", default=None, help="Download from this Hugging Face Hub repo (honours HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE). Default: the registry's, if any.")
@click.option("--filename", default=None, help="File name inside --repo-id. Default: the registry entry's file name.")
@click.option("--revision", default=None, help="Branch, tag or commit of --repo-id. Default: the repo's default branch.")
@click.option("--force", is_flag=True,
              help="Download again even if a valid copy is already present; with --from-file and a NAME that is "
                   "not a known checkpoint, import a file that is not (or may not be) a registry checkpoint under "
                   "that name of your own (use it with --weights NAME). A registry name only ever holds a file "
                   "that matches everything the registry knows. Default: off (re-running is a no-op).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages, only errors. Default: off.")
def download_weights(name, list_, directory, url, from_file, repo_id, filename, revision, force, quiet) -> None:
    """Download, verify and cache the STDAN checkpoint NAME (default: the registry's default, stdan-vimeo).

    The file is written to a temporary `.part` file (an interrupted download resumes from it),
    checked (a weights-only state_dict whose every key and shape matches the architecture, finite
    values, the registry's sha256 when known) and only then moved into place, with its sha256
    recorded beside it. `stdan upscale` and `stdan eval` then find it automatically.

    Sources, first match wins: --from-file, --url, --repo-id, else the registry entry (Hugging Face
    Hub repo, then Google Drive). With HF_HUB_OFFLINE=1 nothing but the Hub cache is used.
    """
    if list_:
        _list(directory)
        return
    if (filename or revision) and not repo_id:
        raise click.UsageError("--filename and --revision go with --repo-id")
    from stdan_cli.api.weights import download_weights as fetch
    from stdan_cli.api.weights import human_size

    result = fetch(name, directory=directory, url=url, from_file=from_file, repo_id=repo_id, filename=filename,
                   revision=revision, force=force, quiet=quiet)
    if quiet:
        return
    if result.already_present:
        click.echo(f"{result.entry.name}: already present and valid at {result.path}; nothing to do (use --force to download again)")
        return
    params = f", {result.num_params:,} parameters" if result.num_params else ""
    click.echo(f"{result.entry.name}: verified and saved to {result.path} ({human_size(result.size)}{params}, sha256 {result.sha256})")
    if result.recorded_in is not None:
        click.echo(f"{result.entry.name}: the registry has no sha256 for it; this file's was recorded in "
                   f"{result.recorded_in}, and every later download or import under this name must match it")
