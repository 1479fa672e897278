"""Chat examples -> input ids and labels, as LLaMA-Factory's supervised SFT builds them.

The seed paper trained its students with LLaMA-Factory, so cotgap tokenises a training example
the way LLaMA-Factory's ``SupervisedDatasetProcessor`` does (``data/processor/supervised.py`` and
``data/template.py``'s ``encode_multiturn`` in LLaMA-Factory 0.9.5), with the student's own chat
template standing in for LLaMA-Factory's template of the same family:

- **Turns as pairs.** An example is chat ``messages`` (an optional system turn, then user /
  assistant turns: the ``train_shots`` exemplars, the question, the rationale). Each
  user -> assistant pair becomes ``(source, target)``: *source* is everything the template writes
  before the assistant's content (the system turn with the first pair, the user turn, the
  generation prompt ``<|im_start|>assistant\\n``), *target* is the assistant's content and the
  template's end of that turn — ``<|im_end|>\\n`` for ChatML (Qwen), exactly what LLaMA-Factory's
  ``qwen`` template trains. Each piece is tokenised on its own, as LLaMA-Factory tokenises each
  template slot on its own.
- **Labels.** Source tokens are masked (-100); every assistant turn is trained, the exemplars'
  answers included, unless ``mask_history`` (then only the last turn, LLaMA-Factory's
  ``mask_history``).
- **cutoff_len.** Pairs are added in order (in reverse under ``mask_history``, so the last turn
  is kept first) while the total is under ``cutoff_len``; a pair that does not fit is cut with
  LLaMA-Factory's ``infer_seqlen``: a short target keeps its whole length and the source loses
  its *end*; otherwise the target loses its end too (the answer and end-of-turn are then cut —
  LLaMA-Factory does so; ``overlength: drop`` leaves such an example out instead).

A student without a chat template gets one pair: the plain prompt as source and the completion
followed by its EOS token as target (what a plain causal LM is trained on). A template that does
not render an assistant turn as an extension of the conversation before it (some templates drop
earlier reasoning) falls back to the same ``content + EOS`` target after the template's prompt;
``encode`` says which in ``Encoded.template_end``.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100
#: ``training.overlength``: cut like LLaMA-Factory's ``cutoff_len``, or leave the example out
OVERLENGTH = ("truncate", "drop")


@dataclass
class Encoded:
    """One tokenised example: ``input_ids`` and ``labels`` (-100 where not trained), and what
    ``cutoff_len`` did to it."""

    input_ids: list[int]
    labels: list[int]
    source_cut: int = 0  # prompt tokens cut
    target_cut: int = 0  # trained tokens cut (the rationale's end)
    template_end: str = "template"  # "template": the chat template's own end of turn; "eos": content + EOS


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """LLaMA-Factory's ``infer_seqlen`` (``data/processor/processor_utils.py``): how much of a
    source and a target fit in ``cutoff_len``."""
    if target_len * 2 < cutoff_len:  # a short target is kept whole; the source is cut
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:  # a short source is kept whole; the target is cut
        max_target_len = cutoff_len - source_len
    else:  # both are cut in proportion
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    max_source_len = max(cutoff_len - new_target_len, 0)
    return min(max_source_len, source_len), new_target_len


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def text_pairs(tokenizer, messages: list[dict]) -> tuple[list[tuple[str, str]], str]:
    """``[(source text, target text), ...]`` for each user -> assistant pair, and the kind of end
    (see the module docstring)."""
    if not getattr(tokenizer, "chat_template", None):
        prompt = "\n\n".join(m["content"] for m in messages[:-1])
        return [(prompt, messages[-1]["content"] + (tokenizer.eos_token or ""))], "eos"
    pairs, done = [], ""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:k], True)
        through = _render(tokenizer, messages[: k + 1], False)
        if not (before.startswith(done) and through.startswith(before)):
            return _eos_pairs(tokenizer, messages), "eos"
        pairs.append((before[len(done) :], through[len(before) :]))
        done = through
    return pairs, "template"


def _eos_pairs(tokenizer, messages: list[dict]) -> list[tuple[str, str]]:
    """One pair: the template's prompt for the last turn, and its content + EOS."""
    prompt = _render(tokenizer, messages[:-1], True)
    return [(prompt, messages[-1]["content"] + (tokenizer.eos_token or ""))]


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode(
    tokenizer, messages: list[dict], *, cutoff_len: int, overlength: str = "truncate", mask_history: bool = False
) -> Encoded | None:
    """``messages`` tokenised for training (module docstring); None when ``overlength`` is
    "drop" and the example is longer than ``cutoff_len``."""
    texts, end = text_pairs(tokenizer, messages)
    pairs = [(_ids(tokenizer, s), _ids(tokenizer, t)) for s, t in texts]
    total = sum(len(s) + len(t) for s, t in pairs)
    if total > cutoff_len and overlength == "drop":
        return None
    if mask_history:
        pairs = pairs[::-1]  # the last turn first: it is the one kept whole
    input_ids: list[int] = []
    labels: list[int] = []
    length = 0
    full_source = sum(len(s) for s, _ in pairs)
    full_target = sum(len(t) for _, t in pairs)
    kept_source = kept_target = 0
    for turn, (source, target) in enumerate(pairs):
        if length >= cutoff_len:
            break
        s_len, t_len = infer_seqlen(len(source), len(target), cutoff_len - length)
        source, target = source[:s_len], target[:t_len]
        length += s_len + t_len
        kept_source, kept_target = kept_source + s_len, kept_target + t_len
        target_labels = [IGNORE_INDEX] * t_len if mask_history and turn != 0 else target
        if mask_history:
            input_ids = source + target + input_ids
            labels = [IGNORE_INDEX] * s_len + target_labels + labels
        else:
            input_ids += source + target
            labels += [IGNORE_INDEX] * s_len + target_labels
    return Encoded(
        input_ids, labels, source_cut=full_source - kept_source, target_cut=full_target - kept_target, template_end=end
    )
