"""`cotgap run --task word_sorting --data-dir shared/data/bbh` end to end on tiny models.

The student is a tiny random-init Llama (real lm-eval HFLM evaluation, real Trainer + peft). The
teacher is the tiny teacher model, except that its generations come from an oracle that writes a
correct BBH-style rationale (a random-init model never writes a correct one, and the filter would
then keep nothing to train on); everything else — data from the BBH folder, the 3:2 split, the
teacher on the train split, the correctness filter, training, both scorings — is the real pipeline.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cotgap.jsonio import read_json, read_jsonl
from tests.conftest import SHARED_DATA

BBH = SHARED_DATA / "bbh"
LIMIT = 3

pytestmark = pytest.mark.skipif(
    not (BBH / "word_sorting.json").exists(), reason=f"BBH data not found at {BBH} (shared/data absent; set COTGAP_SHARED_DATA)"
)


def _oracle():
    from lm_eval.api.model import LM
    from lm_eval.models.utils import postprocess_generated_text

    class Oracle(LM):
        def generate_until(self, requests, disable_tqdm=False):
            out = []
            for r in requests:
                words = r.doc["input"].split("List:")[-1].split()
                text = (
                    f"The words are {', '.join(words)}. In alphabetical order they read "
                    f"{r.doc['target']}. So the answer is {r.doc['target']}."
                )
                out.append(postprocess_generated_text(text, r.args[1].get("until"), None))
            return out

        def loglikelihood(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

    return Oracle()


def test_word_sorting_from_bbh_folder_end_to_end(tmp_path, monkeypatch, tiny_student, tiny_teacher):
    from cotgap.backends import generation
    from cotgap.cli import cli

    real_open = generation.open_lm

    def open_lm(path, **kw):
        return _oracle() if str(path) == str(tiny_teacher) else real_open(path, **kw)

    monkeypatch.setattr(generation, "open_lm", open_lm)
    monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gencache"))
    monkeypatch.delenv("COTGAP_DATA_DIR", raising=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--strategy",
            "plain",
            "--task",
            "word_sorting",
            "--data-dir",
            str(BBH),
            "--student",
            str(tiny_student),
            "--teacher",
            str(tiny_teacher),
            "--limit",
            str(LIMIT),
            "--backend",
            "hf",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output[-3000:]

    manifest = read_json(out / "manifest.json")
    assert manifest["data"]["train"]["n"] == manifest["data"]["test"]["n"] == LIMIT
    baseline = read_json(out / "baseline" / "results.json")
    assert baseline["task"] == "word_sorting" and baseline["n"] == LIMIT
    assert set(baseline["accuracy_by_scoring"]) == {"strict", "robust"}
    test_inputs = {r["input"] for r in read_jsonl(out / "baseline" / "samples.jsonl")}
    assert all(i.startswith("Sort the following words alphabetically") for i in test_inputs)

    index = read_json(out / "generations" / "index.json")
    gens = [g for f in index.values() for g in read_jsonl(out / "generations" / f)]
    assert len(gens) == LIMIT and all(g["correct"] for g in gens)
    assert not test_inputs & {g["input"] for g in gens}  # the teacher only saw train
    kept = [k for f in index.values() for k in read_jsonl(out / "filtered" / f)]
    assert len(kept) == LIMIT
    assert (out / "student" / "adapter" / "adapter_config.json").exists()
    assert read_json(out / "distilled" / "results.json")["n"] == LIMIT
    assert (out / "report.json").exists()
