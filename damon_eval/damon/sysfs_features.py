"""What a sysfs DAMON offers: operations, scheme actions, state commands, capabilities.

Features are detected from which files exist, never from the kernel version
alone (see docs/anchors: ``_damon_features.py`` of damo for the history).
:class:`SysfsFeatures` is the part of
:class:`~damon_eval.damon.sysfs.SysfsBackend` that detects them, kept apart
because it needs none of its starting and stopping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from damon_eval.damon.backend import Features
from damon_eval.damon.sysfs_layout import (
    TRIED_REGIONS,
    SysfsLayout,
    layout_listing_dirs,
    scheme_actions,
)
from damon_eval.fs import ListDir, Read, Write

if TYPE_CHECKING:
    from damon_eval.damon.backend import KdamondStatus


class SysfsFeatures:
    """Feature detection of :class:`~damon_eval.damon.sysfs.SysfsBackend` (a mixin: it
    uses the back end's paths, probe and ``run``)."""

    def _observe_layout(self, statuses: list[KdamondStatus]) -> SysfsLayout | None:
        """List the directories of an existing kdamond with a context (read-only)."""
        candidates = [s for s in statuses if s.operations is not None]
        if not candidates:
            return None
        best = max(candidates, key=lambda s: (s.nr_schemes or 0) > 0)
        with_schemes = bool(best.nr_schemes)
        dirs = layout_listing_dirs(self.paths, best.index, with_schemes=with_schemes)
        values = self.run([ListDir(d) for d in dirs], "listing kdamond directories")
        if with_schemes and TRIED_REGIONS in values[3]:
            values += self.run(
                [ListDir(self.paths.tried_regions_dir(best.index, 0))],
                "listing tried_regions",
            )
        return SysfsLayout.from_listings(values, with_schemes=with_schemes)

    def features(self, *, refresh: bool = False) -> Features:
        if self._features is not None and not refresh:
            return self._features
        probe = self.probe()
        release = probe.kernel_release
        notes: list[str] = []
        statuses = self._statuses(self._probed_states(probe))
        observed = self._observe_layout(statuses)
        layout = observed.completed_by(self.layout) if observed is not None else self.layout
        if observed is not None:
            # Same kernel, same files: later calls (and probe_features after removing its
            # scratch directory) keep what was seen.
            self.layout = layout
        operations: tuple[str, ...] | None = None
        with_context = [s.index for s in statuses if s.operations is not None]
        if layout is None:
            notes.append(
                "no kdamond directory with a context exists to inspect; operations, "
                "actions and state commands are unknown until damon-eval starts a kdamond"
            )
        elif layout.has_avail_operations and with_context:
            (avail,) = self.run(
                [Read(self.paths.avail_operations(with_context[0]))],
                "reading avail_operations",
            )
            operations = tuple(avail.split())
        elif not layout.has_avail_operations:
            operations = ("vaddr", "paddr")
            notes.append("no avail_operations file (Linux < 5.19): vaddr and paddr assumed")
        actions: tuple[str, ...] | None = None
        if layout is not None:
            actions = scheme_actions(layout, release)
        self._features = Features(
            interface=self.interface,
            root=self.admin,
            kernel_release=release,
            operations=operations,
            scheme_actions=actions,
            state_commands=layout.state_commands() if layout else None,
            tracefs=probe.tracefs,
            tracepoints=probe.tracepoints,
            capabilities=layout.capabilities() if layout else (),
            notes=tuple(notes),
        )
        return self._features

    def probe_features(self) -> Features:
        """Features, looking inside a scratch kdamond when no kdamond directory exists.

        sysfs shows context and scheme files (``avail_operations``, the scheme
        and stats files that tell actions and state commands apart) only below
        a kdamond with a context and a scheme.  With ``nr_kdamonds`` 0 this
        writes 1, gives it one context and one scheme, reads the features and
        writes 0 again: the kdamond is never turned on.  With any kdamond
        present it only reads (writing ``nr_kdamonds`` would recreate them).
        """
        if self._nr_kdamonds() != 0:
            return self.features(refresh=True)
        try:
            self.run(
                [
                    Write(self.paths.nr_kdamonds, "1"),
                    Write(self.paths.nr_contexts(0), "1"),
                    Write(self.paths.nr_schemes(0), "1"),
                ],
                f"creating a scratch kdamond directory under {self.kdamonds_dir}",
            )
            features = self.features(refresh=True)
        finally:
            self.run(
                [Write(self.paths.nr_kdamonds, "0")],
                f"removing the scratch kdamond directory under {self.kdamonds_dir}",
            )
        self._features = features
        return features
