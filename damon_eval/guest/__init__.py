"""QEMU guests: image build (mmdebstrap), machines, control channel, saved states.

The run code uses::

    from damon_eval.guest import Guest, ensure_image

    image = ensure_image()                       # configs/guest/default.yaml, cached
    with Guest.start(image, vcpus=2, memory_mib=2048) as guest:
        guest.run("uname -r", timeout_s=30)

A guest is a :class:`damon_eval.machines.protocol.Machine`; SSH to it is
:mod:`damon_eval.machines.ssh`.  See docs/guest.md.  Heavy modules (Fabric,
paramiko) load only when a guest starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from damon_eval.guest.build import build_image
from damon_eval.guest.cache import Image, cached_image
from damon_eval.guest.spec import ImageSpec, image_key, load_spec, parse_spec

if TYPE_CHECKING:
    from damon_eval.guest.machine import Guest

__all__ = [
    "Guest",
    "Image",
    "ImageSpec",
    "build_image",
    "cached_image",
    "ensure_image",
    "image_key",
    "load_spec",
    "parse_spec",
]


def ensure_image(
    spec_path: str | None = None,
    *,
    progress: bool = True,
    kernel: Any = None,
    kernel_base: Path | None = None,
) -> Image:
    """The cached image for a spec file (default spec if None), built if needed.

    ``kernel``: a ``kernel:`` value replacing the spec's (a campaign's guest
    section), relative paths from ``kernel_base``.
    """
    spec = load_spec(spec_path)
    if kernel is not None:
        spec = spec.with_kernel(kernel, kernel_base)
    image, _ = build_image(spec, progress=progress)
    return image


def __getattr__(name: str) -> Any:
    if name == "Guest":
        from damon_eval.guest import machine

        return getattr(machine, name)
    raise AttributeError(f"module 'damon_eval.guest' has no attribute {name!r}")
