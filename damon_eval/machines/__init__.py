"""Machines the harness runs things on: one :class:`~damon_eval.machines.protocol.Machine`
protocol, three kinds.

=======================  ==========================================================
``protocol.py``          the ``Machine`` protocol; ``localize``/``is_persistent``/``kernel_path``
``preparation.py``       ``Preparation`` (uploads + commands) and ``prepare_machine``
``local.py``             ``LocalMachine`` (this machine, or a fake tree) and machine facts
``remote.py``            ``RemoteMachine`` (``--ssh USER@HOST``) and its options
``ssh.py``               ``SshSession``: Fabric/paramiko that never hangs
``ssh_transport.py``     ``SshTarget``, the bounded Fabric connection, one command per channel
``ssh_keys.py``          known_hosts loading and host-key pinning
``signals.py``           SIGTERM/SIGHUP as Ctrl-C, so cleanups run
``terminal.py``          this terminal joined to a remote pty (``guest shell``)
``control.py``           ``ControlChannel``: the host end of a guest's virtio-serial port
``lines.py``             lines with a deadline on every read; unix connects that wait (QMP too)
=======================  ==========================================================

Guests (:class:`damon_eval.guest.machine.Guest`) live in :mod:`damon_eval.guest`,
which uses this package's SSH, control channel and preparation.  The one way to
open a machine, :mod:`damon_eval.machine_select`, sits above both (it starts
guests).  Importing this package imports nothing else.
"""
