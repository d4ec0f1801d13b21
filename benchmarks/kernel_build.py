#!/usr/bin/env python3
"""Wall time of a guest kernel built from source by ``damon_eval.guest.kernel_prepare``.

The tests build with the project's minimal config (``--config minimal``, what
``configs/kernels/damon-guest-minimal.config`` turns on, plus an optional
fragment such as ``configs/kernels/dbgfs.config``).  ``--config debian`` builds
the full distribution kernel instead: Debian's own config, taken from a
``linux-image`` .deb (``--deb``, default: the 6.12 one fetched last into the cache), is
the fragment on top of the base config.  That build takes hours on 2 cores, so
it is a benchmark, never a test.

Each run builds into a fresh temporary cache (``$DAMON_EVAL_CACHE``), so it is
never a cache hit, and removes it afterwards unless ``--keep``.  With
``--write-doc`` the result table replaces its section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from docs_section import write_section

REPO = Path(__file__).resolve().parents[1]
START = "<!-- kernel-build:start -->"
END = "<!-- kernel-build:end -->"
DEFAULT_SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")


def debian_config(deb: Path, out: Path) -> Path:
    """Debian's kernel config (``boot/config-*``) out of a linux-image .deb."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        configs = sorted(Path(tmp, "boot").glob("config-*"))
        if not configs:
            raise SystemExit(f"{deb} has no boot/config-* (a meta package?)")
        out.write_bytes(configs[0].read_bytes())
    return out


def last_fetched_deb() -> Path | None:
    from damon_eval.paths import cache_dir

    debs = cache_dir().glob("debs/*/linux-image-6.12.*-amd64_*.deb")
    return max(debs, key=lambda deb: deb.stat().st_mtime, default=None)


def build_once(source: Path, fragment: Path | None, cache: Path) -> tuple[float, dict]:
    os.environ["DAMON_EVAL_CACHE"] = str(cache)
    from damon_eval.guest import kernel_prepare, kernels

    value: dict = {"source": str(source)}
    if fragment is not None:
        value["config"] = str(fragment)
    choice = kernels.resolve_kernel(value)
    started = time.monotonic()
    prepared = kernel_prepare.prepare_kernel(choice, progress=True)
    return time.monotonic() - started, prepared.provenance()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="tree or tarball")
    parser.add_argument("--config", choices=("minimal", "debian"), default="minimal")
    parser.add_argument("--fragment", type=Path, help="with --config minimal: a config fragment")
    parser.add_argument("--deb", type=Path, help="with --config debian: the linux-image .deb")
    parser.add_argument("--keep", action="store_true", help="keep the temporary cache")
    parser.add_argument("--write-doc", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    if not args.source.exists():
        raise SystemExit(f"no kernel source at {args.source} (apt-get install linux-source-6.12)")
    cache = Path(tempfile.mkdtemp(prefix="kernel-build-bench-"))
    try:
        fragment = args.fragment
        if args.config == "debian":
            deb = args.deb or last_fetched_deb()
            if deb is None:
                raise SystemExit("no linux-image 6.12 .deb in the cache: pass --deb")
            fragment = debian_config(deb, cache / "debian.config")
        load_before = os.getloadavg()
        seconds, info = build_once(args.source, fragment, cache)
        load_after = os.getloadavg()
    finally:
        if not args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    what = args.config + (f" + {args.fragment.name}" if args.fragment else "")
    lines_of_config = info.get("config_lines", {})
    damon = ", ".join(
        f"{k.removeprefix('CONFIG_')}={v}" for k, v in lines_of_config.items() if "DAMON" in k
    )
    lines = [
        START,
        "## Guest kernel build from source (`benchmarks/kernel_build.py`)",
        "",
        f"{datetime.now():%Y-%m-%d %H:%M}, {platform.node()} ({os.cpu_count()} CPUs), "
        f"`benchmarks/kernel_build.py --config {args.config}"
        + (f" --fragment {args.fragment}" if args.fragment else "")
        + "`: a fresh cache, so a real build through `damon_eval.guest.kernel_prepare` "
        "(configure, `make bzImage modules`, `modules_install`). Load average (1/5/15 min) "
        f"{load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f} before, "
        f"{load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} after.",
        "",
        "| config | source | release | wall time | DAMON options |",
        "|---|---|---|---|---|",
        f"| {what} | `{args.source.name}` | {info.get('release', '?')} | {seconds:.0f} s "
        f"| {damon or '-'} |",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if args.write_doc:
        print(f"wrote {write_section(section, START, END)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
