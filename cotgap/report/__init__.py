"""Reports: one run's report (``run_report``), the cross-run report (``cross_run``) and plots.

The cross-run analysis reads its tables with ``tables``, selects tasks with ``selection``,
analyses with ``analysis`` and writes JSON / terminal tables with ``analysis_json`` / ``terminal``.
"""
