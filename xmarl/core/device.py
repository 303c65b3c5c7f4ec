"""Devices: the ``device`` key of a run, parsed once here and resolved against what a backend sees.

Names a config may give: ``auto`` (the backend's first accelerator if it sees one, else the
CPU), ``cpu``, ``gpu`` / ``cuda`` (the first GPU), ``gpu:N`` / ``cuda:N``, ``ascend``,
``ascend:N``. A backend reports the devices it sees in canonical names (``cpu``, ``gpu:0``,
``ascend:0``, ...) through its ``("runtime", "devices")`` registry entry and activates one with
``("runtime", "use_device")``; :func:`select_device` puts the two together. A backend without
those entries (e.g. a plugin) runs on the CPU only.

Each framework fixes its device when its runtime starts (TensorFlow's visible devices,
MindSpore's device target), so one process trains on one device; PyTorch places every tensor
xmarl makes on it. Weights and checkpoints are canonical numpy either way and load on any device.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from xmarl.errors import ConfigError

#: the device kinds of a run's ``device`` key
KINDS = ("auto", "cpu", "gpu", "ascend")
_ALIASES = {"cuda": "gpu"}
_PATTERN = re.compile(r"^(auto|cpu|gpu|cuda|ascend)(?::(\d+))?$")


@dataclass(frozen=True)
class Device:
    """A parsed device: its kind (:data:`KINDS`) and index (None: the first one)."""

    kind: str
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_device(text: str) -> Device:
    """``text`` (e.g. ``"cuda:1"``) as a :class:`Device`; ``ValueError`` naming the valid forms."""
    m = _PATTERN.match(str(text).strip().lower())
    if m is None or (m.group(2) is not None and m.group(1) in ("auto", "cpu")):
        raise ValueError(f"device '{text}' is not one of auto, cpu, cuda, cuda:N, gpu, gpu:N, ascend, ascend:N")
    kind = _ALIASES.get(m.group(1), m.group(1))
    return Device(kind, None if m.group(2) is None else int(m.group(2)))


def resolve_device(requested: str, visible: Sequence[str], backend: str) -> str:
    """The canonical name of the device ``requested`` among those a backend sees (``visible``,
    canonical names, the CPU first); a one-line :class:`ConfigError` naming what is visible when
    it is not there."""
    dev = parse_device(requested)
    accelerators = [v for v in visible if v != "cpu"]
    if dev.kind == "auto":
        return accelerators[0] if accelerators else "cpu"
    if dev.kind == "cpu":
        return "cpu"
    same = [v for v in visible if v.split(":")[0] == dev.kind]
    want = same[0] if dev.index is None and same else f"{dev.kind}:{dev.index if dev.index is not None else 0}"
    if want not in visible:
        raise ConfigError(f"device '{requested}' is not visible to {backend}, which sees {', '.join(visible)}; "
                          "set device to one of those (or auto)")
    return want


def select_device(backend: str, requested: str) -> str:
    """Resolve ``requested`` for ``backend`` and make it the device the backend's learners use;
    returns its canonical name."""
    from xmarl import registry

    name = resolve_device(requested, registry.devices(backend), backend)
    use = registry.find("runtime", "use_device", backend)
    if use is not None:
        use(name)
    return name


__all__ = ["Device", "KINDS", "parse_device", "resolve_device", "select_device"]
