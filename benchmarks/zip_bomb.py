"""Peak memory of refusing a checkpoint that inflates hugely (a zip bomb), issue 29 item 12.

    python benchmarks/zip_bomb.py make BOMB.pth [--gib 1.28]   # a ~1 MB file; little memory
    /usr/bin/time -v python benchmarks/zip_bomb.py load BOMB.pth   # "Maximum resident set size"

``make`` saves a real one-tensor checkpoint (torch.save's zip format) and rewrites its one
storage record as GIB gibibytes of deflated zeros, streamed: the file is about 1 MB for 1.28
GiB declared. ``load`` loads it the way every checkpoint is loaded
(:func:`stdan_cli.model.loader.load_checkpoint_file`) and prints the outcome; run it under
``/usr/bin/time -v`` once with this tree and once with an older one on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path


def make(path: Path, gib: float) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, buffer)
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            if info.filename.endswith("/data/0"):  # the tensor's storage: GIB of zeros, deflated
                big = zipfile.ZipInfo(info.filename)
                big.compress_type = zipfile.ZIP_DEFLATED
                with dst.open(big, "w", force_zip64=True) as member:
                    for _ in range(int(gib * 1024)):
                        member.write(zeros)
            else:
                dst.writestr(info, src.read(info.filename))
    print(f"{path}: {path.stat().st_size:,} bytes, declares "
          f"{sum(i.file_size for i in zipfile.ZipFile(path).infolist()):,} bytes uncompressed")


def load(path: Path) -> None:
    from stdan_cli.errors import CheckpointError
    from stdan_cli.model.loader import load_checkpoint_file

    try:
        obj = load_checkpoint_file(path)
        print(f"loaded: {type(obj).__name__}")
    except CheckpointError as exc:
        print(f"refused: {exc}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["make", "load"])
    parser.add_argument("path", type=Path)
    parser.add_argument("--gib", type=float, default=1.28, help="GiB the bomb inflates to (make). Default: 1.28.")
    args = parser.parse_args()
    make(args.path, args.gib) if args.what == "make" else load(args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
