"""The config layer, below ``measure``: campaigns, run configurations, run keys.

``runkey`` parses ``suite/workload/config/NN`` (and generates the Snakemake
wildcard constraints), ``configuration`` loads ``configs/configurations/*.yaml``
with its schemes parsed and resolved once, ``campaign`` validates a campaign
and holds its configurations, ``repeats`` is the rule of ``repeats: auto``.  Files are found with
:func:`damon_eval.paths.resolve_config_path` and validated with
:mod:`damon_eval.schema`.
"""
