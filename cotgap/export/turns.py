"""A teacher's prompt as chat turns, confirmed against the prompt as it was sent.

A generated record stores the prompt text the teacher received (``prompt``): lm-eval's few-shot
prompt, rendered by the teacher's chat template (or plain, for a model without one; or, for a
chat API, the messages as JSON). The turns themselves are not stored, so they are rebuilt with
the task's own ``fewshot_context`` (what lm-eval hands a chat template: system = the task's
instruction, the exemplars as user/assistant turns, the question) and used only when they give
back exactly what was sent:

- chat API: the stored JSON messages are the turns (as sent);
- plain prompt: the prompt equals the task's plain rendering → one user turn holding it (the same
  rule as a training example of a student without a chat template);
- chat template: the teacher's tokenizer, when it is on this machine (a local folder, a converted
  zoo model, the hub cache; nothing is downloaded or converted), renders the rebuilt turns into
  exactly the stored prompt.

Otherwise (a strategy's own instruction, such as a perspective prompt, a random few-shot sampler,
a tokenizer not on this machine) the record gets no turns and a note saying why.
"""

from __future__ import annotations

import json
from functools import cached_property

from cotgap.backends import evaluation
from cotgap.errors import UserError
from cotgap.export.run_source import RunInfo
from cotgap.protocol.constants import SPLIT_SEED, SYNTHETIC_N

AS_SENT, PLAIN, RENDERED = "as sent (chat API messages)", "plain prompt", "re-rendered by the teacher's chat template"
DIFFERS = "the prompt as sent is not the task's turns (e.g. a strategy's own instruction)"


def task_settings(run: RunInfo) -> evaluation.TaskSettings:
    """The run's task settings as the runner built them (from its config.json)."""
    c = run.config
    return evaluation.TaskSettings(
        name=c["task"],
        seed=(run.manifest.get("seeds") or {}).get("split", SPLIT_SEED),
        limit=c.get("limit"),
        data_dir=c.get("data_dir"),
        synthetic_n=c.get("synthetic_n", SYNTHETIC_N),
        include_paths=list(c.get("include_path") or []),
        scoring=c.get("scoring", "robust"),
    )


class TeacherTurns:
    """Turns of the teachers' prompts for one run (the train task and tokenizers loaded once)."""

    def __init__(self, run: RunInfo):
        self.run = run
        self._tokenizers: dict[str, object] = {}

    @cached_property
    def task(self):
        """The run's train task, or the one-line reason it cannot be loaded here (e.g. its data is elsewhere)."""
        try:
            return evaluation.load_task(task_settings(self.run), split="train")
        except UserError as exc:
            return str(exc)

    @cached_property
    def docs(self) -> list[dict]:
        return evaluation.docs(self.task)

    def of(self, record: dict) -> tuple[list[dict] | None, str]:
        """(the prompt's turns, how they were confirmed) or (None, why there are none)."""
        prompt = str(record.get("prompt", ""))
        sent = _json_messages(prompt)
        if sent is not None:
            return sent, AS_SENT
        if isinstance(self.task, str):
            return None, f"the task cannot be rebuilt here to confirm the turns ({self.task})"
        doc_id = int(record["doc_id"])
        if not 0 <= doc_id < len(self.docs):
            return None, f"doc_id {doc_id} is not in the task's train split as loaded now"
        doc, shots = self.docs[doc_id], int(self.task.config.num_fewshot or 0)
        if self.task.fewshot_context(doc, num_fewshot=shots) == prompt:
            return [{"role": "user", "content": prompt}], PLAIN
        caught: list[list[dict]] = []
        self.task.fewshot_context(
            doc,
            num_fewshot=shots,
            apply_chat_template=True,
            fewshot_as_multiturn=True,
            chat_template=lambda h, add_generation_prompt=True: caught.append([dict(m) for m in h]) or "",
        )
        spec = str(record.get("model") or record.get("source"))
        if spec.startswith("scripted"):  # no chat template: only the plain prompt could have been sent
            return None, DIFFERS
        tokenizer = self._tokenizer(spec)
        if tokenizer is None:
            return None, "the teacher's chat template is not on this machine, so its turns cannot be confirmed"
        try:
            rendered = tokenizer.apply_chat_template(caught[-1], tokenize=False, add_generation_prompt=True)
        except Exception:  # noqa: BLE001 — a template refusing the turns cannot confirm them
            rendered = None
        if rendered == prompt:
            return caught[-1], RENDERED
        return None, DIFFERS

    def _tokenizer(self, spec: str):
        if spec not in self._tokenizers:
            self._tokenizers[spec] = _offline_tokenizer(spec)
        return self._tokenizers[spec]


def _json_messages(prompt: str) -> list[dict] | None:
    """A chat API prompt: lm-eval's ``JsonChatStr`` stores the messages as JSON."""
    if not prompt.startswith("["):
        return None
    try:
        msgs = json.loads(prompt)
    except ValueError:
        return None
    ok = isinstance(msgs, list) and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in msgs)
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in msgs] if ok and msgs else None


def _offline_tokenizer(spec: str):
    """The model's tokenizer if it is on this machine already (never downloads or converts), or None."""
    from cotgap.models import zoo
    from cotgap.models.resolve import resolve

    try:
        ref = resolve(spec)
    except UserError:
        return None
    if ref.kind == "zoo":
        path = str(zoo.model_dir(spec)) if zoo.is_converted(spec) else None
    else:
        path = ref.spec if ref.kind in ("local", "hub") else None
    if path is None:
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception:  # noqa: BLE001 — not in the hub cache, or not a tokenizer folder
        return None
