"""The Ray side of ``cotgap sweep --executor ray``: importing Ray, connecting to a cluster (or
starting a local instance), and refusing, before anything runs, a job no node could ever hold.

Every failure here is one line (a :class:`~cotgap.errors.UserError`, exit 2): Ray not installed,
an address nobody answers at, a ``resources`` entry larger than any node. An address is tried
with a plain TCP connection first, because ``ray.init`` itself keeps retrying an unreachable
address for minutes.
"""

from __future__ import annotations

import os
import re
import socket

from cotgap.errors import UserError
from cotgap.pipeline.resources import DEFAULT_KEY

INSTALL_HINT = "pip install 'cotgap[ray]'"
#: How long the reachability check waits for a TCP connection to the cluster's address.
CONNECT_TIMEOUT_S = 5.0
#: The grid's resource names and the names Ray gives a node's resources.
RAY_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU"}
#: Environment variables of the driver that travel to every task (cotgap's own settings: caches,
#: data folder, threads), so workers started on other machines see the same configuration.
FORWARDED_PREFIX = "COTGAP_"


def import_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


def check_reachable(address: str) -> None:
    """Refuse, in one line, a ``host:port`` (or ``ray://host:port``) address where nothing listens;
    other forms (``auto``, ``local``) are left to Ray."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\]\s]+?)\]?:(\d+)", address.strip())
    if not m:
        return
    host, port = m.group(1), int(m.group(2))
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UserError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} "
            "(is `ray start --head` running there? check --address or RAY_ADDRESS)"
        ) from None


def connect(address: str | None = None, **local) -> bool:
    """Connect to the cluster at ``address`` (else ``RAY_ADDRESS``, else start a local instance with
    ``local`` as ``ray.init`` options, e.g. ``num_cpus``); a Ray this process already started is
    used as it is. Returns whether this call started Ray (the caller then shuts it down)."""
    ray = import_ray()
    target = address or os.environ.get("RAY_ADDRESS")
    if target:
        check_reachable(target)
    if ray.is_initialized():
        return False
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIX)}
    opts = {"runtime_env": {"env_vars": env}} if env else {}
    if not target:
        opts.update(local)
    try:
        ray.init(address=address or None, **opts)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = f"at {target}" if target else "(a local instance)"
        raise UserError(f"cannot connect to Ray {where}: {first}") from None
    return True


def _largest_node(ray) -> dict[str, float]:
    """Per resource, the most any alive node of the cluster has."""
    best: dict[str, float] = {}
    for node in ray.nodes():
        if node.get("Alive"):
            for k, v in (node.get("Resources") or {}).items():
                best[k] = max(best.get(k, 0.0), float(v))
    return best


def check_feasible(ray, resources: dict[str, dict]) -> None:
    """Refuse a grid whose ``resources`` entry (a model's or ``default``'s) asks a task for more
    than the largest node has: Ray would queue that task forever."""
    node = _largest_node(ray)
    for model, want in resources.items():
        for key, amount in want.items():
            have = node.get(RAY_NAMES[key], 0.0)
            if amount > have:
                whose = "the default" if model == DEFAULT_KEY else model
                largest = ", ".join(f"{k} {node.get(v, 0):g}" for k, v in RAY_NAMES.items())
                raise UserError(
                    f"resources of {whose} ask for {key} {amount:g}, but no node of the Ray cluster has "
                    f"that much (the largest has {largest}): Ray would wait for it forever; "
                    "lower the grid's resources or add such a node"
                )
