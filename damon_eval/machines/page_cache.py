"""The file, and the one shell command, that empty a machine's page cache.

Used before a saved state is taken (:mod:`damon_eval.guest.state`) and after a
preparation (:mod:`damon_eval.measure.plan`), so both start from the same settled
memory; :func:`damon_eval.measure.system.settle_memory` writes the file in its batch.
``sync`` first: dirty pages cannot be dropped.
"""

from __future__ import annotations

DROP_CACHES = "/proc/sys/vm/drop_caches"
DROP_CACHES_COMMAND = f"sync && echo 3 > {DROP_CACHES}"
