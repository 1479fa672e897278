"""The embedded zoo on the real packages: pinned checksums are enforced, pinned sizes are the
converted folders' own config counts, and `cotgap models` reports what is there.

These fetch real wheels from PyPI (once; cached in ~/.cache/cotgap) and are skipped with a
reason when PyPI cannot be reached.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.errors import UserError
from cotgap.models import zoo
from cotgap.models.resolve import count_params, resolve
from tests.conftest import ZOO_MODELS

pytestmark = pytest.mark.zoo

SMALL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smol_wheels():
    try:
        return zoo._fetch(zoo.ZOO[SMALL])
    except UserError as exc:  # no PyPI here
        pytest.skip(f"cannot fetch the zoo's wheels: {exc}")


def test_checksum_mismatch_is_refused_and_nothing_is_converted(smol_wheels, tmp_path, monkeypatch):
    monkeypatch.setenv("COTGAP_CACHE", str(tmp_path))
    (tmp_path / "zoo" / "wheels").mkdir(parents=True)
    for w in smol_wheels:
        os.symlink(w, tmp_path / "zoo" / "wheels" / w.name)
    tampered = dataclasses.replace(zoo.ZOO[SMALL], gguf_sha256="0" * 64)
    monkeypatch.setitem(zoo.ZOO, SMALL, tampered)
    with pytest.raises(UserError, match="does not match the pinned"):
        zoo.ensure(SMALL, log=lambda *_: None)
    assert not zoo.is_converted(SMALL)
    assert not zoo.model_dir(SMALL).exists()
    # and on the command line: exit 2, one line, no traceback
    result = CliRunner().invoke(
        cli, ["run", "--student", SMALL, "--teacher", "scripted", "--limit", "2", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2, result.output
    assert "does not match the pinned" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_pinned_size_equals_the_converted_config_count(name):
    """The size rule uses pinned counts before conversion; they must be what the folder's config says."""
    if name in ZOO_MODELS:  # converted for the suite anyway (in the background since it started)
        zoo.ensure(name, log=lambda *_: None)
    if not zoo.is_converted(name):
        pytest.skip(f"{name} is not converted on this machine (other zoo tests convert what they use)")
    assert count_params(resolve(str(zoo.model_dir(name)))) == zoo.ZOO[name].n_params
    meta = json.loads((zoo.model_dir(name) / "cotgap-zoo.json").read_text())
    assert meta["gguf_sha256"] == zoo.ZOO[name].gguf_sha256


def test_zoo_sizes_order_student_below_teachers():
    sizes = {n: m.n_params for n, m in zoo.ZOO.items()}
    assert (
        sizes["smollm2-135m-instruct"]
        < sizes["gemma-3-270m"]
        < sizes["qwen2.5-coder-0.5b-instruct"]
        < sizes["qwen2.5-coder-1.5b-instruct"]
    )


def test_models_command_lists_the_zoo():
    zoo.ensure(SMALL, log=lambda *_: None)
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == set(zoo.ZOO)
    assert rows[SMALL]["converted"] is True and rows[SMALL]["path"]
    assert rows["gemma-3-270m"]["chat_template"] is False


def test_ensure_waits_for_its_own_model_not_for_the_whole_background_queue(tmp_path, monkeypatch):
    """prefetch converts several models in one background process, in order; ensure(first) returns
    as soon as the first is converted, while the process goes on with the next."""
    import subprocess
    import sys
    import time

    from cotgap.models import zoo

    monkeypatch.setenv("COTGAP_CACHE", str(tmp_path))
    first, second = "smollm2-135m-instruct", "gemma-3-270m"
    marker = zoo.model_dir(first) / "cotgap-zoo.json"
    script = (
        f"import pathlib, time; time.sleep(1); p = pathlib.Path({str(marker)!r}); "
        "p.parent.mkdir(parents=True); p.write_text('{}'); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    monkeypatch.setitem(zoo._prefetching, zoo.model_dir(first), proc)
    monkeypatch.setitem(zoo._prefetching, zoo.model_dir(second), proc)
    try:
        t0 = time.time()
        assert zoo.ensure(first, log=lambda *a: None) == zoo.model_dir(first)
        assert time.time() - t0 < 30 and proc.poll() is None  # did not wait for the queue to finish
        assert zoo._prefetching.get(zoo.model_dir(second)) is proc  # the second model's wait is still pending
    finally:
        proc.kill()
        proc.wait()


def test_ensure_waits_for_another_process_converting_the_same_model(tmp_path, monkeypatch):
    """Two processes needing the same unconverted model (two runs started together on a fresh machine):
    the second waits on the conversion lock and then finds the model converted, instead of converting
    it again."""
    import subprocess
    import sys
    import time

    monkeypatch.setenv("COTGAP_CACHE", str(tmp_path))
    marker = zoo.model_dir(SMALL) / "cotgap-zoo.json"
    lock = zoo.zoo_dir() / f".{SMALL}.lock"
    started = tmp_path / "started"
    script = (
        f"import pathlib, time; from filelock import FileLock\n"
        f"with FileLock({str(lock)!r}):\n"
        f"    pathlib.Path({str(started)!r}).touch(); time.sleep(2)\n"
        f"    p = pathlib.Path({str(marker)!r}); p.parent.mkdir(parents=True); p.write_text('{{}}')\n"
    )
    zoo.zoo_dir().mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        while not started.exists():
            assert proc.poll() is None, "the lock holder died"
            time.sleep(0.05)
        said = []
        t0 = time.time()
        assert zoo.ensure(SMALL, log=said.append) == zoo.model_dir(SMALL)
        assert time.time() - t0 > 1  # it waited for the holder ...
        assert said == [f"zoo: another process is converting {SMALL}; waiting for it"]  # ... and fetched nothing
        assert not (zoo.zoo_dir() / "wheels").exists()
    finally:
        proc.wait(timeout=60)


def test_a_conversion_reads_the_gguf_metadata_once(tmp_path):
    """transformers opens a GGUF three times per conversion (config, tokenizer, weights); inside the
    conversion they share one reader, and the library's class is back in place afterwards."""
    import gguf
    import numpy as np

    path = tmp_path / "t.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("w", np.zeros((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    original = gguf.GGUFReader
    with zoo._one_gguf_reader():
        first = gguf.GGUFReader(path)
        assert gguf.GGUFReader(str(path)) is first and first.tensors[0].name == "w"
        assert gguf.GGUFReader(path, "c") is not first  # another mode: another reader
    assert gguf.GGUFReader is original and original(path) is not first
