"""A reasoning model's reasoning reaches the student: in the template's thinking block where the
student's chat template has one, else before the reply; ``generation.reasoning: drop`` trains the
reply alone. (The end-to-end check with a real ``vllm serve`` answering with ``reasoning_content``
is ``tests/test_api_teacher.py::test_server_errors_for_a_while_are_retried_and_reasoning_is_kept``.)"""

from transformers import AutoTokenizer

from cotgap.backends import sft_tokens
from cotgap.pipeline import assistant_turn

# A Qwen3-style template: an assistant turn's reasoning_content is written in a <think> block.
THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' and m.get('reasoning_content') %}<think>\n{{ m['reasoning_content'] }}\n</think>\n\n"
    "{% endif %}{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
RECORD = {"response": " So the answer is (B). ", "reasoning": "First, B is larger than A."}


def _turns(reply: dict) -> list[dict]:
    return [{"role": "user", "content": "Q: which is larger?"}, reply]


def test_reasoning_goes_in_the_thinking_block_when_the_template_has_one(tiny_student):
    tok = AutoTokenizer.from_pretrained(tiny_student)
    tok.chat_template = THINKING_TEMPLATE
    assert assistant_turn.has_thinking_block(tok)
    reply = assistant_turn.assistant_message(RECORD, "include", True)
    assert reply == {"role": "assistant", "content": "So the answer is (B).", "reasoning_content": RECORD["reasoning"]}
    enc = sft_tokens.encode(tok, _turns(reply), cutoff_len=8192)
    trained = tok.decode([t for t in enc.labels if t != sft_tokens.IGNORE_INDEX])
    assert trained == "<think>\nFirst, B is larger than A.\n</think>\n\nSo the answer is (B).<|im_end|>\n"


def test_reasoning_comes_first_without_a_thinking_block_and_drop_leaves_it_out(tiny_student):
    tok = AutoTokenizer.from_pretrained(tiny_student)
    assert not assistant_turn.has_thinking_block(tok)
    included = assistant_turn.assistant_message(RECORD, "include", False)
    assert included["content"] == "First, B is larger than A.\n\nSo the answer is (B)."
    dropped = assistant_turn.assistant_message(RECORD, "drop", False)
    assert dropped == {"role": "assistant", "content": "So the answer is (B)."}
    plain = assistant_turn.assistant_message({"response": "So the answer is (A)."}, "include", False)
    assert plain == {"role": "assistant", "content": "So the answer is (A)."}  # no reasoning: unchanged
