"""Turn a model argument into a ``ModelRef``: a zoo short name, a local folder, or a hub id."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cotgap.errors import UserError
from cotgap.models import api as api_mod
from cotgap.models import zoo

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelRef:
    spec: str  # what the user wrote (API teachers: the canonical name openai:<model>@<base_url>)
    kind: str  # "zoo" | "local" | "hub" | "scripted" | "api"
    api: api_mod.ApiTeacher | None = None  # the endpoint and its settings (kind "api")

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(self.spec).name if self.kind == "local" else self.spec)

    def path(self, log=print) -> str:
        """Folder (or hub id) that transformers / vLLM can load; converts a zoo model once."""
        if self.kind == "zoo":
            return str(zoo.ensure(self.spec, log=log))
        if self.kind == "api":
            raise UserError(f"{self.spec} is an API model: it can write rationales but cannot be loaded or trained")
        return self.spec

    @property
    def n_params(self) -> int:
        return count_params(self)

    @property
    def fingerprint(self) -> str:
        """Identity used in cache keys: pinned checksum, folder contents summary, or hub id."""
        if self.kind == "scripted":
            return f"scripted:{self.spec}"
        if self.kind == "api":  # endpoint and model, never the key or client settings
            return f"api:{self.spec}"
        if self.kind == "zoo":
            return f"zoo:{self.spec}:{zoo.ZOO[self.spec].gguf_sha256}"
        if self.kind == "local":
            p = Path(self.spec)
            items = sorted((f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in p.iterdir() if f.is_file())
            return f"local:{p.resolve()}:" + hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]
        return f"hub:{self.spec}"


def resolve(spec) -> ModelRef:
    if api_mod.is_api_spec(spec):
        teacher = api_mod.parse(spec)
        return ModelRef(teacher.name, "api", teacher)
    spec = str(spec).strip()
    if spec.startswith("scripted"):
        from cotgap.backends.scripted import parse

        if parse(spec) is None:
            raise UserError(f"bad scripted teacher {spec!r}: use scripted[:short|long][:ERROR_RATE]")
        return ModelRef(spec, "scripted")
    if spec in zoo.ZOO:
        return ModelRef(spec, "zoo")
    p = Path(spec).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise UserError(f"model folder {spec} has no config.json")
        return ModelRef(str(p.resolve()), "local")
    if HUB_ID.match(spec) and not spec.startswith((".", "/")):
        return ModelRef(spec, "hub")
    raise UserError(f"unknown model {spec!r}: not a zoo name ({', '.join(zoo.ZOO)}), a local folder, or a hub id")


@cache
def count_params(ref: ModelRef) -> int:
    """Parameter count without reading weights: a local unquantized checkpoint's safetensors
    headers (tensor shapes), else the model built from its config on the meta device."""
    if ref.kind == "zoo":
        return zoo.ZOO[ref.spec].n_params
    if ref.kind == "scripted":
        raise UserError("the scripted teacher is not a model and has no size; use it as a teacher only")
    if ref.kind == "api":
        return int(api_mod.require_declared_size(ref.api) * 1e9)
    if ref.kind == "local" and (n := stored_params(Path(ref.spec))) is not None:
        return n
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(ref.spec)
    except Exception as exc:
        raise UserError(f"cannot read the config of model {ref.spec!r}: {str(exc).splitlines()[0]}") from None
    return meta_params(config)


def meta_params(config) -> int:
    """Parameters of the causal LM ``config`` describes, built on the meta device (no memory used,
    no weights read)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def stored_params(folder: Path) -> int | None:
    """The parameters a local checkpoint stores, from its safetensors headers alone (shapes; no
    tensor is read, no model built, transformers not imported: a bad run is refused in a second).
    The same number as the meta-device count for a checkpoint ``save_pretrained`` wrote (tied
    weights are stored once). None where headers do not tell: no safetensors files, or quantized
    weights (packed tensors hold several parameters each)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if config.get("quantization_config"):
        return None
    index = folder / "model.safetensors.index.json"
    try:
        names = (
            sorted(set(json.loads(index.read_text())["weight_map"].values()))
            if index.exists()
            else sorted(p.name for p in folder.glob("*.safetensors"))
        )
    except (OSError, ValueError, KeyError):
        return None
    if not names:
        return None
    from safetensors import safe_open

    total = 0
    for name in names:
        with safe_open(str(folder / name), framework="numpy") as f:
            total += sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
    return total
