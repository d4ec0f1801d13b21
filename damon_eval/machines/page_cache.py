"""The one shell command that empties a machine's page cache.

Used before a saved state is taken (:mod:`damon_eval.guest.state`) and after a
preparation (:mod:`damon_eval.measure.plan`), so both start from the same settled
memory.  ``sync`` first: dirty pages cannot be dropped.
"""

from __future__ import annotations

DROP_CACHES_COMMAND = "sync && echo 3 > /proc/sys/vm/drop_caches"
