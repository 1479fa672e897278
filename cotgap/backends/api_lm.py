"""An API teacher as an lm-eval ``LM``: lm-eval's own ``local-chat-completions`` model.

lm-eval's ``LocalChatCompletion`` already speaks the OpenAI chat protocol with concurrent
requests (aiohttp), retries with exponential back-off (tenacity) on 429 / 5xx / connection
errors, a per-request timeout, and calls ``cache_hook.add_partial`` for each answered request,
which is what cotgap's request ledger needs to persist answers as they arrive. cotgap adds only:

- the key from the environment variable the user named (never stored anywhere);
- reasoning models: when the server returns ``reasoning_content`` (vLLM's, DeepSeek's) or
  ``reasoning`` (OpenRouter's, newer vLLM) next to ``content``, the answer carries it
  (``Answer.reasoning``) so the ledger and the generation records keep both;
- ``chat_api = True``: the evaluation then sends the few-shot prompt as chat *messages*
  (exemplars as user/assistant turns), exactly the turns a local engine renders through its
  chat template.
"""

from __future__ import annotations

import logging

from lm_eval.models.openai_completions import LocalChatCompletion

from cotgap.backends.counted_lm import CountedRequests
from cotgap.models.api import ApiTeacher
from cotgap.protocol.constants import RUN_SEED


class Answer(str):
    """A response's ``content``, with the server's separate reasoning text (or None)."""

    reasoning: str | None = None

    def __new__(cls, content: str, reasoning: str | None = None):
        obj = super().__new__(cls, content)
        obj.reasoning = reasoning
        return obj


def _reasoning(message: dict) -> str | None:
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return None


class ApiChatLM(CountedRequests, LocalChatCompletion):
    """lm-eval's chat-completions model, configured from an ``ApiTeacher``; requests counted on
    cotgap's progress (``counted_lm``)."""

    chat_api = True

    def __init__(self, api: ApiTeacher, *, seed: int = RUN_SEED, max_gen_toks: int = 256) -> None:
        logging.getLogger("lm_eval.models.api_models").setLevel(logging.ERROR)
        self.api = api
        self._key = api.api_key()  # fails now, in one line, if the variable is missing
        super().__init__(
            base_url=api.chat_url,
            model=api.model,
            num_concurrent=api.concurrency,
            max_retries=api.max_retries,
            timeout=api.timeout_s,
            seed=seed,
            max_gen_toks=max_gen_toks,
            tokenizer_backend=None,
            tokenized_requests=False,
        )

    @property
    def api_key(self) -> str:  # lm-eval's header reads it; a property so it is never cached in a dump
        return self._key

    @property
    def header(self) -> dict:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    @property
    def tokenizer_name(self) -> str:
        return self.api.name.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str:
        return ""  # the server applies its own template to the messages

    def parse_generations(self, outputs, **kwargs) -> list[str]:
        """As lm-eval's, keeping the reasoning text next to ``content``."""
        contents = super().parse_generations(outputs, **kwargs)
        outs = outputs if isinstance(outputs, list) else [outputs]
        reasonings: list[str | None] = []
        for out in outs:
            choices = sorted(out.get("choices") or [{}], key=lambda c: c.get("index", 0)) if isinstance(out, dict) else [{}]
            reasonings.extend(_reasoning(c.get("message") or {}) for c in choices)
        reasonings += [None] * (len(contents) - len(reasonings))
        return [c if c is None else Answer(c, r) for c, r in zip(contents, reasonings)]
