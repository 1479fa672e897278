"""The assistant turn a student is trained on, from a teacher's generation record.

A reasoning model behind an API returns its chain of thought apart from its reply
(``reasoning_content`` / ``reasoning``, kept in the record as ``reasoning``; ``response`` is the
reply). With ``generation.reasoning: include`` (the default) the student learns both, in its own
chat format: the template's thinking block where the template has one (it renders an assistant
message's ``reasoning_content``, as Qwen3's and DeepSeek-R1's templates do), else the reasoning
followed by a blank line and the reply. ``drop`` trains on the reply alone. The evaluation always
scores the reply (the task's filter reads ``response``); records without reasoning are unchanged.
"""

from __future__ import annotations

#: ``generation.reasoning``
REASONING_MODES = ("include", "drop")
_PROBE = "cotgap-reasoning-probe"


def has_thinking_block(tokenizer) -> bool:
    """True when the student's chat template writes an assistant message's ``reasoning_content``."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": _PROBE}]
    try:
        return _PROBE in tokenizer.apply_chat_template(turns, tokenize=False)
    except Exception:  # a template that refuses the extra key has no thinking block
        return False


def assistant_message(record: dict, mode: str, thinking_block: bool) -> dict:
    """The assistant turn for ``record`` (module docstring)."""
    reply = record["response"].strip()
    reasoning = (record.get("reasoning") or "").strip()
    if mode == "drop" or not reasoning:
        return {"role": "assistant", "content": reply}
    if thinking_block:
        return {"role": "assistant", "content": reply, "reasoning_content": reasoning}
    return {"role": "assistant", "content": f"{reasoning}\n\n{reply}"}


def trained_text(message: dict) -> str:
    """The text of an assistant turn as one string (reasoning first), for ``completion`` columns."""
    reasoning = message.get("reasoning_content")
    return f"{reasoning}\n\n{message['content']}" if reasoning else message["content"]
