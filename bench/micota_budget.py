"""Cost of one update of micota's long-parent training on this CPU, by threads, sequence length and
precision — the levers of the default run's 15-minute budget.

The long parent is the short parent (qwen2.5-coder-0.5b-instruct) with LoRA on every linear layer at
micota's ``LONG_PARENT_TRAINING`` rank, alpha and learning rate, trained one example per step; its
examples are the task's few-shot prompt followed by the teacher's long rationale. This times forward
+ backward + AdamW step on one such sequence of ``--tokens`` tokens (random ids: the cost depends on
the length, not the text), ``--steps`` times after one warm-up step, and prints wall and process CPU
seconds per step (CPU time counts every thread: with one thread it is what an idle machine's wall
time would be).

    nice -n 5 .venv/bin/python bench/micota_budget.py --model ~/.cache/cotgap/zoo/qwen2.5-coder-0.5b-instruct \
        --threads 1 --tokens 750 --steps 3 [--bf16]

One configuration per process (torch's thread count is fixed once work has started).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="folder of the short parent")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=750, help="sequence length of one training example")
    ap.add_argument("--steps", type=int, default=3, help="timed updates (after one warm-up)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast, as the trainer's bf16: true")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    from cotgap_plugins.micota import LONG_PARENT_TRAINING as lp
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    lora = LoraConfig(r=lp["lora_r"], lora_alpha=lp["lora_alpha"], target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lp["learning_rate"])
    ids = torch.randint(0, model.config.vocab_size, (1, args.tokens))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()  # warm-up: allocations, kernel selection
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        json.dumps(
            {
                "threads": args.threads,
                "tokens": args.tokens,
                "bf16": args.bf16,
                "steps": args.steps,
                "wall_per_step_s": round(wall / args.steps, 2),
                "cpu_per_step_s": round(cpu / args.steps, 2),
                "peak_rss_gb": round(peak_gb, 2),
                "load_avg": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
