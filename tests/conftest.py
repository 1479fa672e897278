import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = Path(os.environ.get("COTGAP_SHARED_DATA", SHARED / "data"))


@pytest.fixture(scope="session")
def tiny_student(cotgap_tiny_model):
    """The testing kit's tiny model (``cotgap.testing.build_model``: hidden 64, 2 layers, seed 0),
    built once per session and shared with the kit's fixtures (``cotgap_runner``, ``cotgap_run``)."""
    return cotgap_tiny_model


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory):
    from cotgap.testing import build_model

    return build_model(tmp_path_factory.mktemp("tiny-teacher"), hidden=96, layers=3, seed=1)


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch):
    """Generation cache and zoo cache inside the test's tmp dir (zoo reuses the user's if converted)."""
    monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gencache"))
    return tmp_path


#: The zoo models the ``zoo``-marked tests use, in the order they first need them.
ZOO_MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")


def _xdist_worker() -> str | None:
    return os.environ.get("PYTEST_XDIST_WORKER")


def pytest_collection_modifyitems(config, items):
    """Order the tests so that the zoo conversion and the zoo runs overlap with everything else.

    With xdist (``-n 2 --dist loadfile --no-loadscope-reorder``, the default in pyproject.toml) a
    file is a unit of work and units go out in collection order, so the zoo runs (the ``zoo_env``
    tests, one file: they share a session's generation cache, and two at once would not fit in
    memory) go first, to one worker, and take ~10 minutes while the other worker runs the rest;
    the other zoo tests (which wait for every zoo model) go last. Without xdist the tests needing
    no zoo model go first (overlapping the background conversion below), then the zoo runs (the
    first needs only the small models, while the large one may still be converting), then the
    other zoo tests."""

    def key(item):
        zoo, run = item.get_closest_marker("zoo") is not None, "zoo_env" in item.fixturenames
        return (not run, zoo) if _xdist_worker() else (zoo, zoo and not run)

    items.sort(key=key)


def pytest_collection_finish(session):
    """On a fresh machine the zoo is fetched and converted (minutes): start that in the background
    (cotgap's own prefetch, one model at a time, on the second core) while the tests that need no
    zoo model run. A zoo test waits in ``zoo.ensure`` for its own models only (in this process by
    polling, in another — the other xdist worker, a ``cotgap run`` subprocess — on the conversion
    lock). One process starts it: the first xdist worker, or pytest itself without xdist."""
    if _xdist_worker() not in (None, "gw0"):
        return
    if any(item.get_closest_marker("zoo") for item in session.items):
        from cotgap.models import zoo

        zoo.prefetch(ZOO_MODELS, log=lambda *_: None)


def pytest_sessionfinish(session):
    """Stop a background conversion still running at the end (the zoo tests were deselected by
    ``-k``, skipped or interrupted); converted models stay, a partial one is removed."""
    from cotgap.models import zoo

    for proc in set(zoo._prefetching.values()):
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance for the session (2 CPUs, no GPU, no dashboard, workers' output not
    forwarded), started as ``cotgap sweep --executor ray`` starts one; the sweeps under test use it."""
    import ray

    from cotgap.pipeline import ray_cluster

    started = ray_cluster.connect(None, num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def shared_generations(tmp_path_factory):
    """One generation cache for a module's runs (``cotgap_runner(generation_cache=...)``): the
    baseline and the scripted teacher's rationales, the same in each of its runs, are computed
    once. For tests that check a plugin's refusal, not what a run computes or reuses."""
    return tmp_path_factory.mktemp("shared-generations")
