"""The practical protocol (Kajitsuka et al.), enforced by the core for every strategy:
baseline first, per-teacher filtering only, student strictly smaller than every teacher,
reproducible 3:2 splits with no train/test leakage (see ``cotgap.tasks.datasets``)."""
