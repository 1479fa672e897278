"""An API teacher (``vllm serve`` on 127.0.0.1 + lm-eval's chat-completions client) against the
in-process vLLM engine: same model, same train-split prompts, greedy.

Usage: python bench/api_vs_inprocess.py --model qwen2.5-coder-0.5b-instruct [--concurrency 16] [--repeats 2]

For each side the *request phase* is timed (``evaluation.run`` on the train split: every prompt
sent and answered, filters applied), with the engine already loaded: the server is started first
and its start-up is reported separately; the in-process engine's load is reported separately too.
Prints the times, the ratio api / in-process (goal: within 10%) and the agreement of the texts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def timed_run(lm, settings) -> tuple[float, list[str]]:
    from cotgap.backends import evaluation

    task = evaluation.load_task(settings, split="train")
    t0 = time.perf_counter()
    _, records = evaluation.run(lm, task)
    return time.perf_counter() - t0, [r["response"] for r in records]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--task", default="synthetic_object_counting")
    ap.add_argument("--synthetic-n", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    from cotgap.backends import runtime

    runtime.configure()
    from cotgap.backends import engines, evaluation, generation
    from cotgap.backends.api_lm import ApiChatLM
    from cotgap.backends.local_server import LocalServer
    from cotgap.models.api import ApiTeacher
    from cotgap.models.resolve import resolve

    path = resolve(a.model).path()
    settings = evaluation.TaskSettings(name=a.task, synthetic_n=a.synthetic_n)
    args = engines.machine_defaults()
    t0 = time.perf_counter()
    server = LocalServer(path, args, seed=1234, log_path=Path(tempfile.mkdtemp()) / "serve.log").start()
    server_start = time.perf_counter() - t0
    api_times, api_texts = [], []
    try:
        lm = ApiChatLM(ApiTeacher(model=path, base_url=server.base_url, parameters_b=1, concurrency=a.concurrency))
        for _ in range(a.repeats):
            seconds, api_texts = timed_run(lm, settings)
            api_times.append(seconds)
            print(f"api         {seconds:7.1f} s", flush=True)
    finally:
        server.stop()
    t0 = time.perf_counter()
    lm = generation.open_lm(path, backend="vllm", seed=1234, engine_args=args)
    lm.show_progress = False
    load = time.perf_counter() - t0
    local_times, local_texts = [], []
    for _ in range(a.repeats):
        seconds, local_texts = timed_run(lm, settings)
        local_times.append(seconds)
        print(f"in-process  {seconds:7.1f} s", flush=True)
    generation.close()
    same = sum(x == y for x, y in zip(api_texts, local_texts))
    print(
        json.dumps(
            {
                "model": a.model,
                "task": a.task,
                "requests": len(local_texts),
                "concurrency": a.concurrency,
                "api_s": [round(t, 1) for t in api_times],
                "in_process_s": [round(t, 1) for t in local_times],
                "ratio_median": round(statistics.median(api_times) / statistics.median(local_times), 3),
                "server_start_s": round(server_start, 1),
                "in_process_load_s": round(load, 1),
                "identical_texts": f"{same}/{len(local_texts)}",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
