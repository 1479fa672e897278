"""Reports: one run's report (``run_report``), cross-run analysis (``analysis``) and plots."""
