"""What ``--device`` accepts: one table of device kinds, one parser, one help text.

Importing this module loads no PyTorch (``--help`` reads it). Which backends run on a kind is
the backends' table's to say (:data:`stdan_cli.upscalers.engines.backends.BACKENDS`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdan_cli.errors import OptionError


@dataclass(frozen=True)
class DeviceKind:
    name: str
    help: str
    torch: bool  # a PyTorch device (eager PyTorch and torch.compile run there)
    separator: str | None  # how an index is written after the name (cuda:1, gpu.1); None: no index


DEVICE_KINDS: dict[str, DeviceKind] = {
    k.name: k
    for k in (
        DeviceKind("auto", "the first of CUDA, MPS, CPU this machine has", True, None),
        DeviceKind("cpu", "the CPU", True, None),
        DeviceKind("cuda", "an NVIDIA GPU: cuda is the current one, cuda:N the N-th", True, ":"),
        DeviceKind("mps", "an Apple GPU", True, None),
        DeviceKind("dml", "a DirectML GPU (--backend onnxruntime): dml, dml:N", False, ":"),
        DeviceKind("gpu", "an Intel GPU (--backend openvino): gpu, gpu.N", False, "."),
        DeviceKind("npu", "an Intel NPU (--backend openvino)", False, None),
    )
}


def _written(kind: DeviceKind) -> str:
    return kind.name + (f"[{kind.separator}N]" if kind.separator else "")


DEVICE_CHOICES = ", ".join(_written(k) for k in DEVICE_KINDS.values())
DEVICE_HELP = "; ".join(f"{k.name}: {k.help}" for k in DEVICE_KINDS.values())


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed ``--device``: its kind and index (None: the kind's default device)."""

    kind: DeviceKind
    index: int | None = None

    @property
    def name(self) -> str:
        return self.kind.name

    def __str__(self) -> str:
        return self.kind.name + (f"{self.kind.separator}{self.index}" if self.index is not None else "")


def parse_device(text: str | None) -> DeviceSpec:
    """``--device`` as written (``cuda:1``, ``GPU.0``, ``auto``; None is auto) -> its kind and index
    (either separator is read; the kind's own is written)."""
    m = re.fullmatch(r"([a-z]+)(?:([:.])(\d+))?", (text or "auto").strip().lower())
    kind = DEVICE_KINDS.get(m.group(1)) if m else None
    if kind is None or (m.group(2) is not None and kind.separator is None):
        raise OptionError(f"unknown device '{text}'; use {DEVICE_CHOICES}")
    return DeviceSpec(kind, int(m.group(3)) if m.group(3) is not None else None)
