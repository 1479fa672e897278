"""A request ledger: answered generation requests persisted as they arrive, so a killed generation
stage resumes with only the unanswered ones.

lm-eval's own request cache (``CachingLM``) does the same job but stores pickles in SQLite; cotgap
keeps no pickles, so the ledger is an append-only JSONL file, one line per answered request:
``{"key": sha256(prompt, sampling settings), "response": ..., "reasoning": ...}``. Every backend
reports answers through lm-eval's ``cache_hook.add_partial`` (lm-eval's HF and API models do it
per request; cotgap's vLLM model per chunk), which the ledger implements.

One ledger file belongs to one (model, engine output settings, task, split) key — the same key as
the finished generation file it precedes — so a line's key only needs the prompt and sampling
settings. A torn last line (a kill mid-write) is ignored. A ledger is never a finished stage: the
generation file is written, and the ledger removed, only when every request is answered.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lm_eval.api.model import LM

from cotgap.backends.evaluation import prompt_text


def request_key(context, gen_kwargs: dict) -> str:
    blob = json.dumps([prompt_text(context), gen_kwargs], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class RequestLedger:
    """Answers by request key, read from and appended to one JSONL file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.answers: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text(errors="replace").splitlines():
                try:
                    row = json.loads(line)
                    self.answers[row["key"]] = row
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line from a kill mid-write
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = None

    def __len__(self) -> int:
        return len(self.answers)

    def add_partial(self, attr: str, req, res) -> None:
        """lm-eval's cache-hook interface: one answered request, appended and flushed at once."""
        if attr != "generate_until" or res is None:
            return
        context, gen_kwargs = req[0], req[1]
        row = {"key": request_key(context, gen_kwargs), "response": str(res), "reasoning": getattr(res, "reasoning", None)}
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        self.answers[row["key"]] = row

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class LedgeredLM(LM):
    """Any lm-eval LM, answering from the ledger first and sending only the unanswered requests."""

    def __init__(self, inner: LM, ledger: RequestLedger):
        super().__init__()
        self.inner = inner
        self.ledger = ledger
        self.sent = 0  # requests that reached the inner model in this process
        self.reused = 0  # requests answered from the ledger

    def __getattr__(self, name):  # tokenizer, chat_api, … of the wrapped model
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def tokenizer_name(self) -> str:
        return self.inner.tokenizer_name

    def chat_template(self, chat_template: bool | str = False):
        return self.inner.chat_template(chat_template)

    def apply_chat_template(self, chat_history, add_generation_prompt: bool = True):
        return self.inner.apply_chat_template(chat_history, add_generation_prompt=add_generation_prompt)

    def reasoning_of(self, context, gen_kwargs: dict) -> str | None:
        row = self.ledger.answers.get(request_key(context, gen_kwargs))
        return row.get("reasoning") if row else None

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        keys = [request_key(*r.args[:2]) for r in requests]
        todo = {k: r for r, k in zip(requests, keys) if k not in self.ledger.answers}
        self.reused += len(requests) - len(todo)
        fresh: dict[str, str] = {}
        if todo:
            self.sent += len(todo)
            self.inner.set_cache_hook(self.ledger)
            try:
                fresh = dict(zip(todo, self.inner.generate_until(list(todo.values()), disable_tqdm=disable_tqdm)))
            finally:
                self.ledger.close()
        return [self.ledger.answers[k]["response"] if k in self.ledger.answers else str(fresh[k]) for k in keys]

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("cotgap generates rationales with generate_until only")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("cotgap generates rationales with generate_until only")
