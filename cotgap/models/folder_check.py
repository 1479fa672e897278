"""A local model folder checked before any work: it must load with no code of its own.

cotgap never sets ``trust_remote_code``, so no code from a model folder runs; this check makes that
a refusal in one line, before the baseline, instead of an error (or a library default) later:

- **weights in safetensors**: a folder whose weights are only pickle files (``pytorch_model.bin``,
  ``*.pt`` …; loading a pickle can run code) is refused, naming the file;
- **no custom code**: a config whose ``model_type`` transformers does not know, or a tokenizer
  whose ``tokenizer_class`` it does not know, together with an ``auto_map`` pointing at the folder's
  own code, is refused; an ``auto_map`` beside a known type is unnecessary and the folder loads
  with transformers' own classes.
"""

from __future__ import annotations

import json
from pathlib import Path

from cotgap.errors import UserError

#: Weight files that are Python pickles (refused: loading one can run code).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_folder(folder: str | Path, role: str) -> None:
    """Refuse (one line naming ``role`` and the file) a folder that needs pickle or custom code."""
    p = Path(folder)
    _check_weights(p, role)
    config = _json(p / "config.json", role)
    _check_model_type(p, config, role)
    tok = p / "tokenizer_config.json"
    if tok.is_file():
        _check_tokenizer(p, _json(tok, role), role)


def _json(path: Path, role: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{role} {path.parent}: {path.name} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise UserError(f"{role} {path.parent}: {path.name} is not a JSON object")
    return data


def _check_weights(p: Path, role: str) -> None:
    names = sorted(f.name for f in p.iterdir() if f.is_file())
    if any(n.endswith(".safetensors") for n in names):
        return
    pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise UserError(
            f"{role} {p}: its weights {pickles[0]} are a pickle file (loading one can run code); "
            "cotgap loads safetensors only — save the model with save_pretrained(safe_serialization=True)"
        )
    raise UserError(f"{role} {p}: no *.safetensors weights in the folder")


def _check_model_type(p: Path, config: dict, role: str) -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type in CONFIG_MAPPING:
        return
    if config.get("auto_map"):
        raise UserError(
            f"{role} {p}: model type {model_type!r} needs the folder's own code (auto_map in "
            "config.json); cotgap never runs code from a model folder — use a model transformers supports"
        )
    raise UserError(f"{role} {p}: model type {model_type!r} is not one transformers knows")


def _check_tokenizer(p: Path, tok: dict, role: str) -> None:
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    cls = tok.get("tokenizer_class")
    if not tok.get("auto_map") or not isinstance(cls, str):
        return
    known = tokenizer_class_from_name(cls) is not None or tokenizer_class_from_name(cls.removesuffix("Fast")) is not None
    if not known:
        raise UserError(
            f"{role} {p}: tokenizer {cls!r} needs the folder's own code (auto_map in "
            "tokenizer_config.json); cotgap never runs code from a model folder"
        )
