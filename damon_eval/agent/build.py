"""Building ``de-agent``, the measurement agent that runs on the machine.

The agent (``damon_eval/data/agent/de-agent.c``) is the only harness process
on the machine while a workload runs.  This module has its paths there, a
compile script for the machine (:func:`guest_build_script`) and a local build
(:func:`build_agent_locally`, for this machine and tests).  Its command line
and protocol are :mod:`damon_eval.agent.protocol`; what a machine is given
before a run is :func:`damon_eval.agent.preparation.agent_preparation`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from damon_eval.errors import DamonEvalError
from damon_eval.paths import DATA_DIR, GUEST_PREFIX, cache_dir

log = logging.getLogger(__name__)

AGENT_SOURCE_PATH = DATA_DIR / "agent" / "de-agent.c"
AGENT_CFLAGS: tuple[str, ...] = ("-std=c11", "-O2", "-Wall", "-Wextra", "-Werror")

GUEST_AGENT_PATH = f"{GUEST_PREFIX}/bin/de-agent"
GUEST_AGENT_SOURCE_PATH = f"{GUEST_PREFIX}/src/de-agent.c"
# virtio-serial port name: QEMU `-device virtserialport,name=...`; udev links it here.
CONTROL_PORT_NAME = "org.damon-eval.ctl"
GUEST_CONTROL_PATH = f"/dev/virtio-ports/{CONTROL_PORT_NAME}"


class AgentError(DamonEvalError):
    """The agent could not be built, refused a request, or broke its protocol."""


class AgentTimeout(AgentError):
    """The agent did not send an expected message in time."""


# --------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------


def compile_command(
    source: str | Path, output: str | Path, *, cc: str = "gcc", static: bool = True
) -> list[str]:
    """The compiler command line for the agent.

    ``cc`` may be ``musl-gcc``: a static musl build has about a fifth of the
    resident size of a static glibc one (see docs/benchmarks.md).
    """
    command = [cc, *AGENT_CFLAGS]
    if static:
        command.append("-static")
    return [*command, "-o", str(output), str(source)]


def guest_build_script(
    source: str = GUEST_AGENT_SOURCE_PATH, output: str = GUEST_AGENT_PATH
) -> str:
    """A POSIX shell script that builds the agent inside the guest.

    It prefers ``musl-gcc`` (Debian package ``musl-tools``) and falls back to
    ``gcc -static``; it prints which compiler it used.
    """
    strict = shlex.join(compile_command(source, output, cc="$cc")).replace("'$cc'", '"$cc"')
    lenient = strict.replace(" -Werror", "")
    return (
        "set -e\n"
        f"mkdir -p {shlex.quote(str(Path(output).parent))}\n"
        "if command -v musl-gcc >/dev/null 2>&1; then cc=musl-gcc; else cc=gcc; fi\n"
        # a warning new in a newer compiler must not leave the guest without an agent
        f"if {strict}; then\n"
        '  echo "de-agent built with $cc"\n'
        "else\n"
        f"  {lenient}\n"
        '  echo "de-agent built with $cc WITHOUT -Werror: see the warnings above"\n'
        "fi\n"
    )


def local_compilers() -> list[str]:
    """Compilers on this machine that can build the agent, preferred first."""
    return [cc for cc in ("musl-gcc", "gcc") if shutil.which(cc)]


def build_agent_locally(
    output_dir: Path | None = None, *, cc: str | None = None, static: bool = True
) -> Path:
    """Compile the agent on this machine; cached by source hash, compiler and mode."""
    compilers = local_compilers()
    if cc is None:
        if not compilers:
            raise AgentError("cannot build de-agent: neither musl-gcc nor gcc is installed")
        cc = compilers[0]
    source = AGENT_SOURCE_PATH.read_bytes()
    key = hashlib.sha256(source + f"{cc} {static}".encode()).hexdigest()[:16]
    output_dir = output_dir or (cache_dir() / "agent")
    output_dir.mkdir(parents=True, exist_ok=True)
    binary = output_dir / f"de-agent-{key}"
    if binary.exists():
        return binary
    tmp = output_dir / f".de-agent-{key}.{os.getpid()}.tmp"
    proc = subprocess.run(
        compile_command(AGENT_SOURCE_PATH, tmp, cc=cc, static=static),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise AgentError(f"building de-agent with {cc} failed: {proc.stderr.strip()}")
    tmp.replace(binary)
    return binary
