"""Analysis: the tidy run table, the evaluation document's tables, statistics,
headline sentences, the comparison with the published numbers, and plots.

Data flow::

    results/runs/**/result.json --collect--> runs.csv --build_table--> MetricTable
        MetricTable --> text (seed form) / CSV / HTML, plots, headlines, comparison
"""
