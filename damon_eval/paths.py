"""Where things live: the cache outside the repository, and the repository itself."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
# Where a guest image keeps the harness's files (persistent machines map it elsewhere).
GUEST_PREFIX = "/opt/damon-eval"


def cache_dir() -> Path:
    """``$DAMON_EVAL_CACHE``, else ``$XDG_CACHE_HOME/damon-eval``, else ``~/.cache/damon-eval``."""
    explicit = os.environ.get("DAMON_EVAL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "damon-eval"


def repo_root() -> Path | None:
    """The source checkout this package runs from, if it runs from one."""
    candidate = PACKAGE_DIR.parent
    return candidate if (candidate / "pyproject.toml").is_file() else None


def configs_dir() -> Path:
    """The ``configs/`` directory of the checkout (``$DAMON_EVAL_CONFIGS`` overrides)."""
    explicit = os.environ.get("DAMON_EVAL_CONFIGS")
    if explicit:
        return Path(explicit)
    root = repo_root()
    return (root / "configs") if root else Path.cwd() / "configs"
