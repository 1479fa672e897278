import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = Path(os.environ.get("COTGAP_SHARED_DATA", SHARED / "data"))


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory):
    from tests.tiny import build_model

    return build_model(tmp_path_factory.mktemp("tiny-student"), hidden=64, layers=2, seed=0)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory):
    from tests.tiny import build_model

    return build_model(tmp_path_factory.mktemp("tiny-teacher"), hidden=96, layers=3, seed=1)


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch):
    """Generation cache and zoo cache inside the test's tmp dir (zoo reuses the user's if converted)."""
    monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gencache"))
    return tmp_path


#: The zoo models the ``zoo``-marked tests use, in the order they first need them.
ZOO_MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")


def pytest_collection_finish(session):
    """On a fresh machine the zoo is fetched and converted (minutes): start that in the background
    (cotgap's own prefetch, one model at a time, on the second core) while the tests that need no
    zoo model run; the zoo tests (collected last) wait in ``zoo.ensure`` for their model only."""
    if any(item.get_closest_marker("zoo") for item in session.items):
        from cotgap.models import zoo

        zoo.prefetch(ZOO_MODELS, log=lambda *_: None)


def pytest_sessionfinish(session):
    """Stop a background conversion nobody waited for (the zoo tests were skipped or interrupted)."""
    from cotgap.models import zoo

    for proc in set(zoo._prefetching.values()):
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
