"""``damon-eval guest build|boot|shell|exec|check|stop|list``: images and QEMU guests."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from damon_eval.errors import ConfigError, GuestError

DEFAULT_GUEST_NAME = "default"


def _add_image_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spec", help="guest image spec (YAML; default configs/guest/default.yaml)"
    )
    parser.add_argument("--image", help="an image directory to use instead of --spec")
    _add_kernel_arg(parser)


def _add_kernel_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kernel",
        help="guest kernel instead of the spec's: a Debian package, a .deb, a build "
        "directory, a source tree or tarball, or a mapping such as "
        "'{source: ~/linux, config: frag.config, patches: [a.patch]}'",
    )


def _spec(args: argparse.Namespace):
    from damon_eval.guest.kernels import parse_kernel_option
    from damon_eval.guest.spec import load_spec

    spec = load_spec(args.spec)
    if getattr(args, "kernel", None):
        spec = spec.with_kernel(parse_kernel_option(args.kernel))
    return spec


def _add_machine_args(parser: argparse.ArgumentParser) -> None:
    _add_image_args(parser)
    parser.add_argument("--vcpus", type=int, default=2, help="virtual CPUs (default 2)")
    parser.add_argument("--memory-mib", type=int, default=2048, help="guest memory (default 2048)")
    parser.add_argument(
        "--accel", choices=("auto", "kvm", "tcg"), default="auto",
        help="accelerator (auto: KVM if a probe boot works, else TCG with a warning)",
    )  # fmt: skip
    parser.add_argument(
        "--no-fast-start", dest="fast_start", action="store_false",
        help="boot cold instead of restoring a saved booted state",
    )  # fmt: skip
    parser.add_argument(
        "--keep-overlay", action="store_true", help="keep the per-run disk overlay afterwards"
    )
    parser.add_argument("--pin-cpus", help="host CPUs for vCPU 0,1,... (comma-separated, e.g. 0,1)")
    parser.add_argument("--boot-timeout", type=float, help="seconds to wait for SSH")


def _add_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", default=DEFAULT_GUEST_NAME, help=f"guest name (default {DEFAULT_GUEST_NAME})"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="guest_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="build the guest image (cached; a no-op when unchanged)")
    build.add_argument("--spec", help="guest image spec (default configs/guest/default.yaml)")
    _add_kernel_arg(build)
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.add_argument("--quiet", action="store_true", help="no progress output")
    build.add_argument(
        "--manifest",
        metavar="FILE",
        help="also write the image's manifest (key, kernel, path) to FILE (the pipeline's output)",
    )
    build.set_defaults(guest_run=_build)

    boot = sub.add_parser("boot", help="start a guest that stays up (see stop)")
    _add_name(boot)
    _add_machine_args(boot)
    boot.add_argument(
        "--foreground", action="store_true",
        help="stay in the foreground; the guest stops with this command (Ctrl-C)",
    )  # fmt: skip
    boot.set_defaults(guest_run=_boot)

    shell = sub.add_parser("shell", help="interactive SSH shell on a booted guest")
    _add_name(shell)
    shell.set_defaults(guest_run=_shell)

    exec_ = sub.add_parser("exec", help="run one command on a booted guest: exec -- CMD ...")
    _add_name(exec_)
    exec_.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    exec_.add_argument("command", nargs=argparse.REMAINDER, help="the command (after --)")
    exec_.set_defaults(guest_run=_exec)

    check = sub.add_parser("check", help="boot a guest and print its capabilities")
    check.add_argument("--name", help="check this booted guest instead of booting a temporary one")
    _add_machine_args(check)
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.set_defaults(guest_run=_check)

    stop = sub.add_parser(
        "stop", help="stop a booted guest (power-off if its overlay is kept, else sync + quit)"
    )
    _add_name(stop)
    stop.add_argument("--all", action="store_true", help="stop every booted guest")
    stop.set_defaults(guest_run=_stop)

    listing = sub.add_parser("list", help="cached images, saved states and booted guests")
    listing.set_defaults(guest_run=_list)

    prune = sub.add_parser(
        "prune",
        help="remove cached images, saved states and own kernels of other specs (unless in use)",
    )
    prune.add_argument(
        "--spec", action="append",
        help="spec whose image (and own kernel) to keep "
        "(repeatable; default: every spec in configs/guest/ and every campaign in configs/)",
    )  # fmt: skip
    prune.add_argument(
        "--campaign", action="append", default=[],
        help="campaign whose images and kernels (guest.kernel, every kernels: entry) to keep "
        "(repeatable; with --spec or --campaign only those are kept)",
    )  # fmt: skip
    prune.add_argument("--dry-run", action="store_true", help="only list what would go")
    prune.set_defaults(guest_run=_prune)


def run(args: argparse.Namespace) -> int:
    return int(args.guest_run(args) or 0)


# ----------------------------------------------------------------- helpers


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _image(args: argparse.Namespace):
    from damon_eval.guest.build import build_image
    from damon_eval.guest.cache import Image

    if getattr(args, "image", None):
        return Image.load(args.image)
    image, _ = build_image(_spec(args))
    return image


def _pin_cpus(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--pin-cpus must be comma-separated CPU numbers, got {text!r}") from None


def _start(args: argparse.Namespace, *, name: str | None, detach: bool):
    from damon_eval.guest.machine import Guest

    return Guest.start(
        _image(args),
        vcpus=args.vcpus,
        memory_mib=args.memory_mib,
        accel=args.accel,
        fast_start=args.fast_start,
        keep_overlay=args.keep_overlay,
        name=name,
        pin_cpus=_pin_cpus(args.pin_cpus),
        boot_timeout_s=args.boot_timeout,
        detach=detach,
    )


# ---------------------------------------------------------------- actions


def _build(args: argparse.Namespace) -> int:
    from damon_eval.guest.build import build_image

    started = time.monotonic()
    image, built = build_image(_spec(args), force=args.force, progress=not args.quiet)
    manifest = image.manifest()
    verb = "built" if built else "cached"
    if args.manifest:
        from damon_eval.atomic import atomic_write_json

        atomic_write_json(Path(args.manifest), {**manifest, "path": str(image.path)})
    print(
        f"{verb} {image.path} (kernel {manifest['kernel_release']}, "
        f"{manifest['nr_packages']} packages) in {time.monotonic() - started:.2f} s"
    )
    return 0


def _boot(args: argparse.Namespace) -> int:
    from damon_eval.guest.detached import guests_dir
    from damon_eval.guest.machine import Guest

    record = guests_dir() / args.name / "guest.json"
    if record.exists():
        try:
            Guest.attach(args.name)
        except GuestError:
            pass  # a dead record: Guest.start sweeps it
        else:
            raise GuestError(
                f"a guest named {args.name!r} is already running; stop it with "
                f"`damon-eval guest stop --name {args.name}` or pick another --name"
            )
    guest = _start(args, name=args.name, detach=not args.foreground)
    print(
        f"guest {guest.name}: {guest.boot_kind} boot in {guest.boot_seconds:.1f} s "
        f"({guest.accel}), SSH on 127.0.0.1:{guest.ssh_port}; "
        f"ssh -F {guest.workdir / 'ssh_config'} guest"
    )
    if not args.foreground:
        print(f"stop it with: damon-eval guest stop --name {guest.name}")
        return 0

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    print("running in the foreground; Ctrl-C stops the guest", flush=True)
    try:
        while guest.is_alive():
            time.sleep(0.5)
        print(f"guest {guest.name} exited; last console lines: {guest.console_tail()}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        guest.shutdown()


def _shell(args: argparse.Namespace) -> int:
    from damon_eval.guest.machine import Guest

    return Guest.attach(args.name).interactive_shell()


def _exec(args: argparse.Namespace) -> int:
    import shlex

    from damon_eval.guest.machine import Guest

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigError("nothing to run: use `damon-eval guest exec [--name N] -- CMD ...`")
    text = command[0] if len(command) == 1 else shlex.join(command)
    result = Guest.attach(args.name).run(text, timeout_s=args.timeout)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.exit_status


def _check(args: argparse.Namespace) -> int:
    from damon_eval.guest import capabilities
    from damon_eval.guest.machine import Guest

    if args.name:
        caps = capabilities.collect(Guest.attach(args.name))
    else:
        with _start(args, name=None, detach=False) as guest:
            caps = capabilities.collect(guest)
    if args.json:
        print(json.dumps(caps.as_dict(), indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="guest capabilities")
    table.add_column("capability")
    table.add_column("value")
    table.add_column("ok")
    for label, value, good in caps.rows():
        # Values such as "[always] madvise never" are text, not rich markup.
        table.add_row(escape(label), escape(value), "yes" if good else "[yellow]no[/yellow]")
    console = Console()
    console.print(table)
    for note in caps.damon_notes:
        console.print(f"note: {escape(note)}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from damon_eval.guest.detached import guests_dir, list_guests, sweep_stale_guests
    from damon_eval.guest.machine import Guest

    names = [g["name"] for g in list_guests()] if args.all else [args.name]
    for name in names:
        try:
            guest = Guest.attach(name)
        except GuestError as exc:
            if not (guests_dir() / name / "guest.json").exists():
                if args.all:
                    continue
                raise
            # Dead QEMU: clean what it left behind.
            sweep_stale_guests()
            print(f"guest {name} was not running ({exc}); cleaned up")
            continue
        guest.shutdown()  # powers off cleanly when the overlay is kept, else sync + quit
        print(f"stopped guest {name}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from damon_eval.guest.cache import list_images
    from damon_eval.guest.detached import list_guests
    from damon_eval.guest.state import list_states

    for image in list_images():
        manifest = image.manifest()
        print(
            f"image {manifest['key']}  {manifest['spec']['suite']}  "
            f"kernel {manifest['kernel_release']}  built {manifest['built_at']}  {image.path}"
        )
    for state in list_states():
        problem = state.problem()
        info = state.info() if state.info_path.exists() else {}
        inputs = info.get("inputs", {})
        print(
            f"state {state.key}  image {inputs.get('image_key')}  {inputs.get('vcpus')} vCPUs  "
            f"{inputs.get('memory_mib')} MiB  {inputs.get('accel')}  "
            f"{'ok' if problem is None else problem}"
        )
    for record in list_guests():
        status = "running" if record["alive"] else "dead"
        print(
            f"guest {record['name']}  {status}  pid {record['pid']}  "
            f"ssh 127.0.0.1:{record['ssh_port']}  {record['accel']}"
        )
    return 0


def campaign_specs(campaign) -> list:
    """The image specs a campaign's runs boot: its guest spec with each of its kernels."""
    from damon_eval.guest.spec import load_spec
    from damon_eval.paths import resolve_config_path

    spec = load_spec(resolve_config_path(campaign.settings["guest"]["spec"]))
    specs = []
    for name in campaign.kernel_names:
        value = campaign.kernel_value(name)
        specs.append(spec if value is None else spec.with_kernel(value, campaign.source.parent))
    return specs


def _shipped_specs() -> list:
    """What a prune keeps by default: every image spec in configs/guest/ and the images and
    kernels of every campaign in configs/ (a campaign that does not load keeps nothing)."""
    from damon_eval.errors import DamonEvalError
    from damon_eval.guest.spec import load_spec
    from damon_eval.measure.plan import load_campaign_argument
    from damon_eval.paths import configs_dir

    keep = [load_spec(None)]
    keep += [load_spec(path) for path in sorted((configs_dir() / "guest").glob("*.yaml"))]
    for path in sorted(configs_dir().glob("*.yaml")):
        try:
            keep += campaign_specs(load_campaign_argument(str(path)))
        except DamonEvalError as exc:
            print(f"note: keeping nothing for campaign {path.name}: {exc}")
    return keep


def _prune(args: argparse.Namespace) -> int:
    from damon_eval.guest.prune import prune
    from damon_eval.guest.spec import load_spec
    from damon_eval.measure.plan import load_campaign_argument

    if args.spec or args.campaign:
        from damon_eval.paths import resolve_config_path

        # the forms a campaign's guest.spec takes: a path, or relative to configs/
        keep = [load_spec(resolve_config_path(path)) for path in args.spec or ()]
        for campaign_path in args.campaign:
            keep += campaign_specs(load_campaign_argument(campaign_path))
    else:
        keep = _shipped_specs()
    items = prune(keep, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for item in items:
        print(f"{verb} {item.path} ({item.reason})")
    if not items:
        print("nothing to remove")
    return 0
