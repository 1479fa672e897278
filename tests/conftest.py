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
