"""One module per ``damon-eval`` subcommand (see :mod:`damon_eval.cli`)."""
