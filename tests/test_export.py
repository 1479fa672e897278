"""`cotgap export` (issue 15, item 2): a run's rationales as a datasets folder or chat-messages JSONL,
round-tripped against what the train stage really tokenised, and bad input refused in one line."""

import json
import shutil

import pytest
from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.jsonio import read_json, read_jsonl, write_json
from tests.conftest import SHARED_DATA
from tests.tiny_run import tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_student, tiny_teacher):
    return tiny_run(tmp_path_factory, tiny_student, tiny_teacher)


def _export(*args):
    return CliRunner().invoke(cli, ["export", *map(str, args)])


@pytest.fixture(scope="module")
def training_exports(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    for fmt in ("hf", "chat-jsonl"):
        result = _export(run.path, out / f"training-{fmt}", "--what", "training", "--format", fmt)
        assert result.exit_code == 0, result.output
    return out


def is_conversational(example: dict) -> bool:
    """TRL's check (trl/data_utils.py ``is_conversational``): the first of its supported keys found
    holds a list whose first item is a dict with "role" and "content"."""
    keys = {k for k in example if k in ("prompt", "chosen", "rejected", "completion", "messages")}
    if keys:
        value = example[keys.pop()]
        if isinstance(value, list) and isinstance(value[0], dict) and {"role", "content"} <= set(value[0]):
            return True
    return False


def _well_formed(messages: list[dict]) -> bool:
    """An optional system turn, then user/assistant alternating, ending with the assistant (what
    LLaMA-Factory's sharegpt/openai format requires)."""
    roles = [m["role"] for m in messages]
    body = roles[1:] if roles[0] == "system" else roles
    return bool(body) and len(body) % 2 == 0 and body == ["user", "assistant"] * (len(body) // 2)


def test_training_export_is_exactly_what_the_trainer_tokenised(run, training_exports):
    import datasets
    from transformers import AutoTokenizer

    from cotgap.backends.training import TrainConfig, tokenize

    ((examples, rows),) = run.trained  # one train_sft call
    kept = [examples[r["example_index"]] for r in rows]
    assert len(kept) == len(examples) > 0  # max_length truncates (LLaMA-Factory's cutoff_len), it drops nothing
    hf = datasets.load_from_disk(str(training_exports / "training-hf"))
    assert [(r["prompt"], r["completion"]) for r in hf] == [(e["prompt"], e["completion"]) for e in kept]
    tok = AutoTokenizer.from_pretrained(str(run.path / "student" / "model"))
    texts = [{"messages": r["messages"]} for r in hf]  # no static weights here
    again, _ = tokenize(tok, texts, TrainConfig(max_length=run.config["training"]["max_length"]))
    assert [(a["input_ids"], a["labels"]) for a in again] == [(r["input_ids"], r["labels"]) for r in rows]
    assert any(r["prompt_tokens_cut"] or r["response_tokens_cut"] for r in hf)
    for r in hf:  # the turns are what the student's chat template rendered
        assert tok.apply_chat_template(r["messages"][:-1], tokenize=False, add_generation_prompt=True) == r["prompt"]
        assert r["messages"][-1] == {"role": "assistant", "content": r["completion"]}  # no reasoning here
        assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant", "user", "assistant"]  # 1 shot
    jsonl = datasets.load_dataset("json", data_files=str(training_exports / "training-chat-jsonl"), split="train")
    assert [r["messages"] for r in jsonl] == [r["messages"] for r in hf]
    key = read_json(run.path / "run.json")["key"]
    for r in jsonl:
        assert is_conversational(r) and _well_formed(r["messages"])
        assert "prompt" not in r and "completion" not in r  # TRL would read those as the dataset's type
        assert r["config_hash"] == key and r["source"] == "scripted" and r["correct"] is True and r["doc_id"] >= 0


def test_cards_state_the_run_and_the_protocol(run, training_exports):
    key = read_json(run.path / "run.json")["key"]
    card = (training_exports / "training-hf" / "README.md").read_text()
    beside = (training_exports / "training-chat-jsonl.README.md").read_text()
    for text in (card, beside):
        for fact in (
            key,
            "synthetic_navigate",
            "scripted",
            str(run.config["student"]),
            "seed 1234",
            "3:2",
            "no cross-teacher filtering",
            "strictly smaller than every teacher",
            "`robust` scoring",
            "<|im_end|>",
            "mask_history",
        ):
            assert fact in text, fact
        assert "BIG-Bench-Hard" not in text  # not a BBH task


def test_generations_and_kept_exports(run, tmp_path):
    import datasets

    result = _export(run.path, tmp_path / "gen", "--what", "generations", "--format", "hf")
    assert result.exit_code == 0, result.output
    gen = datasets.load_from_disk(str(tmp_path / "gen"))
    index = read_json(run.path / "generations" / "index.json")
    assert len(gen) == sum(len(read_jsonl(run.path / "generations" / f)) for f in index.values())
    checks = {r["source"]: r["messages_check"] for r in gen}
    assert checks["scripted"] == "plain prompt"  # no chat template: one user turn, the prompt as sent
    assert checks[str(run.config["teachers"][1])] == "re-rendered by the teacher's chat template"
    assert all(r["messages"][-1] == {"role": "assistant", "content": r["response"]} for r in gen)
    result = _export(run.path, tmp_path / "kept.jsonl", "--what", "kept", "--format", "chat-jsonl")
    assert result.exit_code == 0, result.output
    kept = read_jsonl(tmp_path / "kept.jsonl")
    assert len(kept) == run.report["sources"][0]["kept"] + run.report["sources"][1]["kept"]
    assert all(r["correct"] and is_conversational(r) and _well_formed(r["messages"]) for r in kept)
    assert (tmp_path / "kept.jsonl.README.md").exists()


def _one_line_exit_2(result, *words):
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    for w in words:
        assert w in text, text


def test_bad_input_is_one_line_exit_2(run, tmp_path):
    _one_line_exit_2(_export(tmp_path / "nowhere", tmp_path / "o", "--what", "kept", "--format", "hf"), "no such")
    (tmp_path / "empty").mkdir()
    _one_line_exit_2(_export(tmp_path / "empty", tmp_path / "o", "--what", "kept", "--format", "hf"), "not a cotgap run")
    (tmp_path / "taken").mkdir()
    _one_line_exit_2(_export(run.path, tmp_path / "taken", "--what", "kept", "--format", "hf"), "exists")
    _one_line_exit_2(_export(run.path, tmp_path / "o", "--format", "hf"), "--what")
    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy, ignore=shutil.ignore_patterns(".lock"))
    (copy / "stages" / "train.json").unlink()  # as if killed while training
    _one_line_exit_2(_export(copy, tmp_path / "o", "--what", "training", "--format", "hf"), "train stage has not finished")
    assert _export(copy, tmp_path / "o", "--what", "kept", "--format", "chat-jsonl").exit_code == 0  # filter did finish
    assert not (tmp_path / "taken" / "README.md").exists()


def test_a_run_trained_before_examples_were_stored(run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run.path, old, ignore=shutil.ignore_patterns(".lock"))
    (old / "student" / "examples.jsonl").unlink()
    rec = read_json(old / "stages" / "train.json")
    rec["files"].pop("student/examples.jsonl")
    write_json(old / "stages" / "train.json", rec)
    _one_line_exit_2(_export(old, tmp_path / "o", "--what", "training", "--format", "hf"), "before cotgap stored")
    (old / "filtered" / read_json(old / "generations" / "index.json")["scripted"]).write_text("{}\n")  # tampered
    _one_line_exit_2(_export(old, tmp_path / "o", "--what", "kept", "--format", "hf"), "cannot be trusted")


def test_unconfirmed_turns_are_left_out_not_guessed(run):
    from cotgap.export import run_source, turns

    teacher_turns = turns.TeacherTurns(run_source.open_run(run.path, "generations"))
    rec = read_jsonl(run.path / "generations" / read_json(run.path / "generations" / "index.json")["scripted"])[0]
    assert teacher_turns.of(rec)[1] == turns.PLAIN
    other = {**rec, "prompt": "Another instruction.\n\n" + rec["prompt"]}  # e.g. a strategy's own description
    msgs, why = teacher_turns.of(other)
    assert msgs is None and "not the task's turns" in why
    chat = {**rec, "prompt": json.dumps([{"role": "user", "content": "Q?"}])}  # a chat API's messages
    assert teacher_turns.of(chat) == ([{"role": "user", "content": "Q?"}], turns.AS_SENT)


@pytest.mark.skipif(not (SHARED_DATA / "bbh" / "word_sorting.json").exists(), reason="needs ../shared/data/bbh")
def test_bbh_card_carries_the_data_files_canary(run):
    from cotgap.export import benchmark, card, rows
    from cotgap.export.run_source import RunInfo

    info = RunInfo(
        path=run.path,
        key="k",
        config={"task": "word_sorting", "data_dir": str(SHARED_DATA), "student": "s", "teachers": ["t"]},
        manifest={"strategy": {"name": "plain"}},
    )
    bench = benchmark.of(info)
    canary = json.loads((SHARED_DATA / "bbh" / "word_sorting.json").read_text())["canary"]
    assert bench.is_bbh and bench.canary == canary
    text = card.render(info, "kept", "hf", [], bench)
    assert canary in text and "must not be used to train models that are released publicly" in text
    assert all(r["canary"] == canary for r in rows.build(info, "training", bench))  # in the data itself too
