"""Reports: one run's report (``run_report``), the cross-run report (``cross_run``) and plots.

The cross-run analysis reads its tables with ``tables``, selects tasks with ``selection``,
analyses with ``analysis`` (its rules in ``capacity``, ``capacity_gap``, ``recommend``,
``replicates`` and ``noise``; its records in ``results``) and writes JSON / terminal tables with
``analysis_json`` / ``terminal``. ``teacher_data`` credits a run's sources to its teachers.
"""
