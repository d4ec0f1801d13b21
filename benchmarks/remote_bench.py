"""Costs of the --ssh machinery against a private OpenSSH server on 127.0.0.1.

Measures what a remote run pays per operation: connecting (key exchange and
authentication: what each poll of a running workload costs), one command, one
ShellFs batch, and file copies through `cat` (no SFTP).  Needs root and
openssh-server (tests/local_sshd.py); prints a Markdown table.

    .venv/bin/python benchmarks/remote_bench.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from local_sshd import LocalSshd, unavailable_reason

from damon_eval.fs import Read
from damon_eval.machines.remote import RemoteMachine, RemoteOptions, RemoteSpec


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"skipped: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp, LocalSshd(Path(tmp) / "sshd") as sshd:
        known = sshd.write_known_hosts()
        options = RemoteOptions(RemoteSpec("root", "127.0.0.1", sshd.port), known_hosts=known,
                                identity=sshd.client_key, use_agent=False)  # fmt: skip
        connects, polls, commands, batches = [], [], [], []
        machine = RemoteMachine.connect(options)
        status = Path(tmp) / "status"
        status.write_text("status=ok\n")
        files = [f"/proc/sys/kernel/{name}" for name in ("osrelease", "hostname", "ostype")] * 7
        for _ in range(args.repeat):
            started = time.monotonic()
            other = RemoteMachine.connect(options)
            connects.append(time.monotonic() - started)
            other.disconnect()
            started = time.monotonic()
            machine.disconnect()  # a poll: connect, one cat, disconnect
            machine.run(f"cat {status}", timeout_s=30)
            polls.append(time.monotonic() - started)
            started = time.monotonic()
            machine.run("true", timeout_s=30)
            commands.append(time.monotonic() - started)
            started = time.monotonic()
            machine.fs.execute([Read(path) for path in files])
            batches.append(time.monotonic() - started)
        blob = Path(tmp) / "blob"
        blob.write_bytes(os.urandom(64 << 20))
        started = time.monotonic()
        machine.put(blob, f"{tmp}/copy")
        put_s = time.monotonic() - started
        started = time.monotonic()
        machine.get(f"{tmp}/copy", Path(tmp) / "back")
        get_s = time.monotonic() - started
        machine.disconnect()
    print(f"| operation (median of {args.repeat}) | time |")
    print("|---|---|")
    print(f"| connect (key exchange + public-key auth) | {_median_ms(connects)} |")
    print(
        f"| one poll of a running workload (connect, `cat status`, close) | {_median_ms(polls)} |"
    )
    print(f"| one command on an open connection | {_median_ms(commands)} |")
    print(f"| one ShellFs batch of {len(files)} reads | {_median_ms(batches)} |")
    print(f"| put 64 MiB through `cat` | {64 / put_s:.0f} MiB/s |")
    print(f"| get 64 MiB through `cat` | {64 / get_s:.0f} MiB/s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
