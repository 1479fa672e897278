"""lm-eval's own result files (issue 15, item 3): every evaluation writes results_<date>.json and
samples_<task>_<date>.jsonl through lm-eval's EvaluationTracker, inside the stage's folder (covered
by its record), the shared baseline carries them, and report.json points at their folders."""

import json

import pytest

from cotgap.jsonio import read_json, read_jsonl
from tests.tiny_run import tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_student, tiny_teacher):
    return tiny_run(tmp_path_factory, tiny_student, tiny_teacher)


def _read_lm_eval(folder):
    """The results and samples files as lm-eval's own helpers find them, parsed."""
    from lm_eval.utils import get_file_task_name, get_results_filenames, get_sample_results_filenames

    names = [str(p) for p in sorted(folder.iterdir())]
    (results_file,), (samples_file,) = get_results_filenames(names), get_sample_results_filenames(names)
    results = json.loads(open(results_file).read())
    task = get_file_task_name(samples_file.rsplit("/", 1)[-1])
    return results, task, [json.loads(line) for line in open(samples_file)], samples_file


def test_evaluation_writes_lm_eval_files_with_cotgap_numbers(tmp_path):
    """The scripted teacher at a 50 % error rate gives an accuracy strictly between 0 and 1."""
    from lm_eval.utils import make_table

    from cotgap.backends import evaluation, generation

    settings = evaluation.TaskSettings(name="synthetic_navigate", limit=12)
    task = evaluation.load_task(settings, split="train")
    lm = generation.open_lm("scripted:short:0.5", backend="hf", seed=3)
    summary, records = evaluation.run(lm, task, lm_eval_dir=tmp_path / "lm-eval", model_name="scripted:short:0.5")
    assert 0 < summary["accuracy"] < 1
    results, name, samples, samples_file = _read_lm_eval(tmp_path / "lm-eval")
    assert name == "synthetic_navigate" and results["model_name"] == "scripted:short:0.5"
    assert results["results"][name]["exact_match,robust"] == pytest.approx(summary["accuracy"])
    assert results["results"][name]["exact_match,strict"] == pytest.approx(summary["accuracy_by_scoring"]["strict"])
    robust = {s["doc_id"]: bool(s["exact_match"]) for s in samples if s["filter"] == "robust"}
    assert robust == {r["doc_id"]: r["correct"] for r in records}
    assert "synthetic_navigate" in make_table(results)  # lm-eval's own table of a results file
    import datasets

    assert len(datasets.load_dataset("json", data_files=samples_file, split="train")) == len(samples)


def test_run_stages_hold_lm_eval_files_and_report_points_at_them(run):
    report = read_json(run.path / "report.json")
    for stage in ("baseline", "distilled"):
        assert report["lm_eval_files"][stage] == f"{stage}/lm-eval"
        listed = [f"{stage}/lm-eval/{p.name}" for p in (run.path / stage / "lm-eval").iterdir()]
        assert len(listed) == 2
        recorded = read_json(run.path / "stages" / f"{stage}.json")["files"]
        assert set(listed) <= set(recorded)  # digested by the stage record: a changed file recomputes it
        results, name, samples, _ = _read_lm_eval(run.path / stage / "lm-eval")
        ours = read_json(run.path / stage / "results.json")
        assert results["results"][name]["exact_match,robust"] == pytest.approx(ours["accuracy"])
        assert report[stage]["accuracy"] == pytest.approx(100 * ours["accuracy"])
        assert {s["doc_id"] for s in samples} == {r["doc_id"] for r in read_jsonl(run.path / stage / "samples.jsonl")}


def test_shared_baseline_carries_lm_eval_files(run, tmp_path):
    """A second run of the same student and task reuses the shared baseline, lm-eval files included."""
    from rich.console import Console

    from cotgap import config
    from cotgap.pipeline.runner import Runner

    base = read_json(run.path / "stages" / "baseline.json")
    shared = run.cache / "baselines"
    (entry,) = list(shared.iterdir())
    names = sorted(p.name for p in (run.path / "baseline" / "lm-eval").iterdir())
    assert sorted(p.name for p in (entry / "lm-eval").iterdir()) == names
    cfg = config.load(None, {**run.config, "seed": 7, "out": str(tmp_path / "second")})
    runner = Runner(cfg, Console(quiet=True), generation_cache=str(run.cache)).prepare()

    class Stop(Exception):
        pass

    def stop(*_):
        raise Stop

    runner._generate_stage = stop  # only the baseline is needed here
    with pytest.raises(Stop):
        runner.execute()
    second = read_json(tmp_path / "second" / "stages" / "baseline.json")
    assert second.get("shared") and second["accuracy"] == base["accuracy"]
    for p in (run.path / "baseline" / "lm-eval").iterdir():
        assert (tmp_path / "second" / "baseline" / "lm-eval" / p.name).read_bytes() == p.read_bytes()
    assert any(k.startswith("baseline/lm-eval/results_") for k in second["files"])


def test_a_failed_lm_eval_write_is_an_error_not_a_warning(tmp_path, monkeypatch):
    """lm-eval's tracker catches a failed write and only logs it; cotgap raises, keeping the cause
    (a full disk is then reported as one, exit 3)."""
    import errno
    from pathlib import Path

    from cotgap.backends import evaluation, generation
    from cotgap.cli import _disk_full

    task = evaluation.load_task(evaluation.TaskSettings(name="synthetic_navigate", limit=3), split="train")
    real = Path.write_text

    def full(self, *args, **kwargs):
        if self.name.startswith("results_"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(RuntimeError, match="could not write") as exc:
        evaluation.run(generation.open_lm("scripted"), task, lm_eval_dir=tmp_path / "lm-eval")
    assert _disk_full(exc.value)
