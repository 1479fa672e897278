"""The real pipeline end to end on tiny random-init models (real lm-eval, Trainer, peft)."""

import subprocess
import sys

import pytest

from cotgap import Strategy
from cotgap.backends.training import Collator, TrainConfig, tokenize
from cotgap.jsonio import read_json, read_jsonl

LIMIT = "6"


def _run(tmp_path, student, *extra, strategy="plain", teacher="scripted"):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cotgap",
            "run",
            "--strategy",
            strategy,
            "--student",
            str(student),
            "--teacher",
            teacher,
            "--task",
            "synthetic_navigate",
            "--limit",
            LIMIT,
            "--backend",
            "hf",
            "--out",
            str(tmp_path / "run"),
            *extra,
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "COTGAP_GENERATION_CACHE": str(tmp_path / "gencache")},
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_student):
    tmp = tmp_path_factory.mktemp("pipeline")
    out = _run(tmp, tiny_student)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return tmp, out


def test_run_writes_every_artefact(finished_run):
    tmp, out = finished_run
    run = tmp / "run"
    for rel in (
        "config.json",
        "manifest.json",
        "baseline/results.json",
        "baseline/samples.jsonl",
        "generations/index.json",
        "student/model/config.json",
        "student/adapter/adapter_config.json",
        "distilled/samples.jsonl",
        "report.json",
        "report.png",
    ):
        assert (run / rel).exists(), rel
    report = read_json(run / "report.json")
    assert report["verdict"] in ("helped", "no significant change", "hurt")
    # both scorings are reported; the configured one (robust) is the headline number
    assert set(report["accuracy_by_scoring"]["baseline"]) == {"strict", "robust"}
    assert report["accuracy_by_scoring"]["distilled"]["robust"] == pytest.approx(report["distilled"]["accuracy"], abs=0.01)
    assert "strict scoring" in out.stdout
    assert report["baseline"]["n"] == int(LIMIT)
    src = report["sources"][0]
    assert src["source"] == "scripted" and src["generated"] == int(LIMIT) and src["kept"] == src["correct"] == int(LIMIT)
    # the scripted teacher is marked, and the report says the size rule does not apply to it
    assert src["scripted"] is True and report["scripted_teachers"] == ["scripted"]
    assert any("size rule does not apply" in n for n in report["notes"])
    assert "(scripted)" in out.stdout and "size rule does not apply" in out.stdout
    manifest = read_json(run / "manifest.json")
    assert manifest["data"]["train"]["n"] == int(LIMIT) and "lm-eval" in manifest["packages"]
    assert "distilled − baseline" in out.stdout and "verdict" in out.stdout


def test_teacher_only_sees_train_split(finished_run):
    tmp, _ = finished_run
    run = tmp / "run"
    test_inputs = {r["input"] for r in read_jsonl(run / "baseline" / "samples.jsonl")}
    gens = read_jsonl(run / "generations" / read_json(run / "generations" / "index.json")["scripted"])
    assert gens and not test_inputs & {g["input"] for g in gens}


def test_rerun_recomputes_nothing_and_kill_resumes(finished_run, tiny_student):
    tmp, _ = finished_run
    again = _run(tmp, tiny_student)
    assert again.returncode == 0, again.stderr[-2000:]
    report = read_json(tmp / "run" / "report.json")
    assert report["run"]["computed"] == []
    assert set(report["run"]["cached"]) == {"baseline", "generate", "filter", "train", "distilled"}
    (tmp / "run" / "stages" / "distilled.json").unlink()  # as if killed during the last evaluation
    resumed = _run(tmp, tiny_student)
    assert resumed.returncode == 0
    assert read_json(tmp / "run" / "report.json")["run"]["computed"] == ["distilled"]


def _chat(question: str, rationale: str, shots: int = 0) -> list[dict]:
    turns = [{"role": "system", "content": "Answer the question."}]
    for i in range(shots):
        turns += [{"role": "user", "content": f"Q: exemplar {i}?"}, {"role": "assistant", "content": f"Exemplar answer {i}."}]
    return turns + [{"role": "user", "content": question}, {"role": "assistant", "content": rationale}]


def test_loss_only_on_assistant_tokens_through_the_templates_end_of_turn(tiny_student):
    """The trained tokens are the rationale and the template's own end of turn (ChatML:
    ``<|im_end|>\n``, what LLaMA-Factory's qwen template trains); the prompt is masked."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_student)
    rows, _ = tokenize(tok, [{"messages": _chat("Q: is it?", "So the answer is Yes.")}], TrainConfig())
    labels = rows[0]["labels"]
    trained = [t for t in labels if t != -100]
    assert tok.decode(trained) == "So the answer is Yes.<|im_end|>\n"
    n_prompt = labels.index(trained[0])
    assert labels[:n_prompt] == [-100] * n_prompt and all(x != -100 for x in labels[n_prompt:])
    batch = Collator(tok.pad_token_id)(rows + tokenize(tok, [{"messages": _chat("x", "y")}], TrainConfig())[0])
    assert batch["labels"].shape == batch["input_ids"].shape


def test_exemplar_answers_are_trained_unless_mask_history(tiny_student):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_student)
    ex = [{"messages": _chat("Q: last?", "So the answer is No.", shots=2)}]
    every = [t for t in tokenize(tok, ex, TrainConfig())[0][0]["labels"] if t != -100]
    last = [t for t in tokenize(tok, ex, TrainConfig(mask_history=True))[0][0]["labels"] if t != -100]
    assert tok.decode(last) == "So the answer is No.<|im_end|>\n"
    assert tok.decode(every) == "Exemplar answer 0.<|im_end|>\nExemplar answer 1.<|im_end|>\nSo the answer is No.<|im_end|>\n"


@pytest.mark.parametrize("rationale_words, cut_prompt, cut_response", [(3, True, False), (60, True, True)])
def test_cutoff_truncates_as_llamafactory(tiny_student, rationale_words, cut_prompt, cut_response):
    """LLaMA-Factory's ``infer_seqlen``: a short rationale is kept whole and the prompt loses its
    end; a long one is cut at its end (answer and end of turn lost); ``overlength: drop`` leaves
    the example out instead. Counted per source."""
    from transformers import AutoTokenizer

    from cotgap.backends.sft_tokens import infer_seqlen

    tok = AutoTokenizer.from_pretrained(tiny_student)
    rationale = " ".join(["step"] * rationale_words) + " So the answer is No."
    ex = {"messages": _chat("Q: " + "a long question " * 10 + "?", rationale), "source": "s"}
    cutoff = 48
    rows, counts = tokenize(tok, [ex], TrainConfig(max_length=cutoff))
    (row,) = rows
    full, _ = tokenize(tok, [ex], TrainConfig())
    source = full[0]["labels"].count(-100)
    target = len(full[0]["input_ids"]) - source
    s_len, t_len = infer_seqlen(source, target, cutoff)
    assert len(row["input_ids"]) == s_len + t_len <= cutoff
    assert row["input_ids"] == full[0]["input_ids"][:s_len] + full[0]["input_ids"][source : source + t_len]
    assert (counts["prompt_truncated"] == {"s": 1}) == cut_prompt and (counts["response_truncated"] == {"s": 1}) == cut_response
    dropped, counts = tokenize(tok, [ex], TrainConfig(max_length=cutoff, overlength="drop"))
    assert dropped == [] and counts["dropped"] == {"s": 1}


def test_filter_receives_one_source_and_must_return_subset(cotgap_register, cotgap_runner):
    """A plugin that tries to smuggle another source's record into a filter result is refused."""
    from cotgap.errors import ProtocolError

    seen = []

    class Cheat(Strategy):
        name = "cheat"

        def generate(self, ctx):
            return {
                "a": ctx.generate_rationales("scripted", source="a"),
                "b": ctx.generate_rationales("scripted:short:0.5", source="b"),
            }

        def filter(self, ctx, source, records):
            seen.append((source, {r["source"] for r in records}))
            return records + [{"doc_id": 999, "response": "not given", "correct": True}]

    cotgap_register(Cheat())
    runner = cotgap_runner(strategy="cheat").prepare()
    with pytest.raises(ProtocolError, match="subset"):
        runner.execute()
    assert seen == [("a", {"a"})]  # one source at a time, nothing of the other teacher


def _halve(index, weight, losses):  # module level: what a plugin passes as weight_fn
    import torch

    return torch.full_like(losses, 0.5)


@pytest.mark.parametrize("average", ["token", "example"])
def test_weight_fn_changes_the_loss_as_documented(tmp_path, tiny_student, average):
    """A plugin changes the loss with a plain function (``trainer_kwargs={"weight_fn": f}``): weights
    of 0.5 give half the loss of plain SFT on the same batch, under both loss averages; weights of 1
    are plain SFT exactly."""
    from cotgap.backends.training import train_sft

    ex = [{"messages": _chat(f"Q: {i}?", "step " * (1 + 3 * i) + "So the answer is No."), "source": "s"} for i in range(4)]
    cfg = TrainConfig(epochs=1, per_device_batch_size=2, loss_average=average, warmup_ratio=0.0)
    plain = train_sft(str(tiny_student), ex, tmp_path / "plain", cfg, progress=False, log=lambda *_: None)
    half = train_sft(
        str(tiny_student), ex, tmp_path / "half", cfg, progress=False, log=lambda *_: None, trainer_kwargs={"weight_fn": _halve}
    )
    assert half.loss_history[0]["loss"] == pytest.approx(plain.loss_history[0]["loss"] / 2, rel=1e-5)
