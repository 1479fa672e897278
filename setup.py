"""Package discovery, the one thing ``pyproject.toml`` cannot say (everything else is there).

cotgap's packages are found, not listed: a hand-written list once left ``cotgap.export`` out of
the wheel, unnoticed because every test ran on the editable install (``scripts/wheel_smoke.sh``
now installs the wheel and runs it). ``pyproject.toml``'s ``packages.find`` cannot map folders to
other names, and two are installed under other names (``plugins/`` is ``cotgap_plugins``,
``task_configs/`` is ``cotgap_task_configs``), so the discovery and that mapping are here.
"""

from setuptools import find_namespace_packages, setup

#: Installed name -> folder: the built-in strategies and the lm-eval task YAMLs.
RENAMED = {"cotgap_plugins": "plugins", "cotgap_task_configs": "task_configs"}


def packages() -> list[str]:
    """cotgap and every folder below it (namespace folders too: ``cotgap/accelerate_configs``
    holds YAML only), then each renamed folder and its sub-packages under its installed name."""
    found = find_namespace_packages(include=["cotgap", "cotgap.*"], exclude=["*.__pycache__"])
    for name, folder in RENAMED.items():
        subs = find_namespace_packages(where=folder, exclude=["*__pycache__"])
        found += [name, *(f"{name}.{sub}" for sub in subs)]
    return found


setup(package_dir=RENAMED, packages=packages())
