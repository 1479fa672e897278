"""Logit-level distillation on TRL's trainers, shared by the ``onpolicy`` and ``gkd`` strategies.

Both train the student against the teacher's next-token *distribution* (not its text), with TRL
(``trl.DistillationTrainer``: the student samples, the teacher scores every sampled token;
``trl.experimental.gkd.GKDTrainer``: a mix, ``lmbda``, of student samples and the teacher's
kept rationales, optionally sequence-level KD). The loss is TRL's generalized Jensen-Shannon
divergence, ``beta`` choosing forward KL (0), JSD (0.5) or reverse KL (1).

What this module adds around the trainers (nothing of their losses is changed):

- ``check_shared_vocabulary``: both trainers compare distributions token by token, so teacher and
  student must have the same vocabulary (token -> id map and logit width); otherwise the run is
  refused in one line naming both tokenizers, before any work.
- the run's ``training`` config turned into TRL's arguments (batch, accumulation, learning rate,
  schedule, warmup, seed, bf16, ``max_steps``) and a LoRA config (``method: lora``), so a
  strategy compared with ``plain`` trains under the same settings;
- compute counting: every student sample, teacher-scored token, teacher-generated token and
  trained token is added to the run's compute ledger (``ctx.compute``), and saved with each
  checkpoint so a resumed run keeps the counts of the part it does not redo;
- checkpoints in ``<out>.work/`` (every ``training.save_steps`` updates, default 50) with an
  inputs key: a killed training of the same inputs resumes from the last one;
- the merged student written to ``<out>/model`` with ``train.json``, as ``train_student`` does.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import warnings
from pathlib import Path

from cotgap import TrainResult, UserError

# TRL warns, on importing its generation modules, that the vLLM beside it is newer than it tested;
# cotgap's own vLLM serves generation and evaluation, and these trainers generate with transformers.
warnings.filterwarnings("ignore", message="TRL currently supports vLLM", category=UserWarning)

#: ``divergence`` parameter -> TRL's ``beta`` of the generalized JSD
DIVERGENCES = {"forward_kl": 0.0, "jsd": 0.5, "reverse_kl": 1.0}
#: checkpoint every this many updates when ``training.save_steps`` is 0 (automatic)
DEFAULT_SAVE_EVERY = 50
LEDGER_FILE = "cotgap_compute.json"


def beta_of(params: dict) -> float:
    """TRL's ``beta``: the ``beta`` parameter if set (a generalized JSD), else the named divergence's."""
    return float(params["beta"]) if params.get("beta") is not None else DIVERGENCES[params["divergence"]]


# -- checks before any work ---------------------------------------------------------------------
def teacher_for_logits(ctx, strategy: str):
    """The one model teacher whose distribution is distilled: refused (one line) if the run names
    several, or one that has no logits here (the scripted teacher, an API model)."""
    if len(ctx.teachers) != 1:
        raise UserError(
            f"strategy {strategy} distils one teacher's distribution; the run names "
            f"{len(ctx.teachers)} ({', '.join(t.spec for t in ctx.teachers)})"
        )
    teacher = ctx.teachers[0]
    if teacher.kind in ("scripted", "api"):
        raise UserError(
            f"strategy {strategy} needs the teacher's next-token distribution: {teacher.spec} is "
            f"{'a scripted teacher (not a model)' if teacher.kind == 'scripted' else 'an API model'}; "
            "name a local, hub or zoo model of the student's vocabulary"
        )
    return teacher


def vocabulary(path: str) -> tuple[str, int, str]:
    """(tokenizer description, logit width, digest of the token -> id map) of the model at ``path``."""
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    width = AutoConfig.from_pretrained(path).get_text_config().vocab_size
    digest = hashlib.sha256(json.dumps(sorted(tok.get_vocab().items())).encode()).hexdigest()[:16]
    return f"{type(tok).__name__} of {path} ({len(tok)} tokens, logits {width})", width, digest


def check_shared_vocabulary(strategy: str, student, teacher, log=print) -> None:
    """Refuse, in one line naming both tokenizers, a teacher whose vocabulary differs from the
    student's: the divergence compares the two distributions id by id."""
    s_desc, s_width, s_digest = vocabulary(student.path(log=log))
    t_desc, t_width, t_digest = vocabulary(teacher.path(log=log))
    if (s_width, s_digest) != (t_width, t_digest):
        raise UserError(
            f"strategy {strategy}: teacher {teacher.spec} and student {student.spec} do not share a "
            f"vocabulary (teacher tokenizer {t_desc}; student tokenizer {s_desc}); logit-level "
            "distillation compares next-token distributions token by token — use a teacher of the "
            "student's family (cross-tokenizer distillation is not offered)"
        )


# -- TRL arguments ------------------------------------------------------------------------------
def batch_size(cfg) -> int:
    """Examples per device per micro-batch (``training.per_device_batch_size``)."""
    return int(cfg.per_device_batch_size)


def updates(cfg, n_rows: int) -> int:
    """Optimizer updates the trainer will make on ``n_rows`` examples (``max_steps`` if set)."""
    if cfg.max_steps and cfg.max_steps > 0:
        return int(cfg.max_steps)
    per_epoch = math.ceil(math.ceil(n_rows / batch_size(cfg)) / cfg.grad_accum)
    return math.ceil(per_epoch * cfg.epochs)


def save_every(cfg, total: int) -> int:
    """Updates between checkpoints: ``training.save_steps``, 0 = automatic, -1 = never."""
    if cfg.save_steps == -1:
        return 0
    every = cfg.save_steps or DEFAULT_SAVE_EVERY
    return every if every < total else 0


def trl_arguments(config_cls, cfg, work: Path, n_rows: int, **extra):
    """TRL's config (``DistillationConfig`` / ``GKDConfig``) from the run's ``training`` section.
    TRL's own defaults that differ from transformers' (gradient checkpointing on, bf16 on,
    learning rate 1e-6) are overridden by the run's settings, so every strategy of a comparison
    trains alike."""
    import torch

    total = updates(cfg, n_rows)
    every = save_every(cfg, total)
    return config_cls(
        output_dir=str(work),
        per_device_train_batch_size=batch_size(cfg),
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr(),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=math.ceil(cfg.warmup_ratio * total),
        bf16=cfg.use_bf16(),
        use_cpu=not torch.cuda.is_available(),
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="steps" if every else "no",
        save_steps=max(1, every),
        save_total_limit=cfg.save_total_limit,
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **extra,
    )


def lora_config(cfg):
    """peft's LoRA config for ``method: lora`` (all linear layers, as the SFT strategies), else None."""
    if cfg.method != "lora":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules="all-linear", task_type="CAUSAL_LM"
    )


#: ``teacher_dtype`` parameter values: the frozen teacher's weights (bfloat16 halves its memory)
TEACHER_DTYPES = ("float32", "bfloat16")


def load_models(student_path: str, teacher_path: str, teacher_dtype: str = "float32"):
    """Student (float32, trained) and teacher (``teacher_dtype``, frozen, eval mode); the teacher's
    logits are taken in float32 by TRL's loss either way."""
    import torch
    from transformers import AutoModelForCausalLM

    student = AutoModelForCausalLM.from_pretrained(student_path, dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(teacher_path, dtype=getattr(torch, teacher_dtype))
    teacher.eval().requires_grad_(False)
    return student, teacher


# -- resumption ----------------------------------------------------------------------------------
def inputs_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resume_point(work: Path, key: str, log) -> Path | None:
    """The last checkpoint a killed training of the same inputs left in ``work``, else None (a
    work folder of other inputs is cleared)."""
    from transformers.trainer_utils import get_last_checkpoint

    marker = work / "inputs.key"
    if work.is_dir() and (not marker.is_file() or marker.read_text().strip() != key):
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(key)
    last = get_last_checkpoint(str(work))
    if last:
        log(f"  resuming the distillation from {Path(last).name}")
    return Path(last) if last else None


def write_outputs(trainer, tokenizer, cfg, out_dir: Path, n_rows: int, extra: dict) -> TrainResult:
    """The merged student (and LoRA adapter) and ``train.json`` into ``out_dir``, atomically."""
    import torch

    out_dir = Path(out_dir)
    staging = out_dir.parent / (out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model, adapter = trainer.model, None
    if cfg.method == "lora":
        model.save_pretrained(staging / "adapter")
        adapter = str(out_dir / "adapter")
        model = model.merge_and_unload()
    if cfg.use_bf16():
        model = model.to(torch.bfloat16)
    model.save_pretrained(staging / "model")
    tokenizer.save_pretrained(staging / "model")
    history = [
        {"step": h["step"], "loss": h["loss"], "lr": h.get("learning_rate")} for h in trainer.state.log_history if "loss" in h
    ]
    result = TrainResult(
        path=str(out_dir / "model"),
        adapter_path=adapter,
        updates=int(trainer.state.global_step),
        examples=n_rows,
        loss_history=history,
        extra=extra,
    )
    (staging / "train.json").write_text(
        json.dumps({"config": {k: v for k, v in vars(cfg).items()}, **result.to_json()}, indent=2, default=str)
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    return result


# -- the training ---------------------------------------------------------------------------------
def prompt_rows(examples: list[dict]) -> list[dict]:
    """On-policy rows: the prompt only (the student writes the completion)."""
    return [{"prompt": ex["prompt"]} for ex in examples]


def rationale_rows(examples: list[dict], tokenizer, max_length: int) -> list[dict]:
    """GKD rows: prompt + the teacher's rationale (+ EOS) as ids, the rationale marked by
    ``completion_mask``; the prompt is cut from the left to fit ``max_length``, and a rationale
    that alone does not fit is left out (as the SFT strategies do)."""
    rows = []
    eos = tokenizer.eos_token or ""
    for ex in examples:
        p_ids = tokenizer(ex["prompt"], add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(ex["completion"] + eos, add_special_tokens=False)["input_ids"]
        room = max_length - len(c_ids)
        if room < 1:
            continue
        p_ids = p_ids[max(0, len(p_ids) - room) :]
        ids = p_ids + c_ids
        rows.append(
            {
                "prompt": ex["prompt"],
                "input_ids": ids,
                "attention_mask": [1] * len(ids),
                "completion_mask": [0] * len(p_ids) + [1] * len(c_ids),
            }
        )
    return rows


def trainer_for(kind: str, params: dict, cfg, work: Path, rows: list, student, teacher, tokenizer, counts, extra_callbacks=()):
    """The counting TRL trainer of ``kind`` ("onpolicy" or "gkd") with the strategy's parameters;
    ``extra_callbacks``: the core's (a grid budget's stop)."""
    from cotgap_plugins import _distill_trainers as t
    from datasets import Dataset

    common = {
        "model": student,
        "teacher_model": teacher,
        "train_dataset": Dataset.from_list(rows),
        "processing_class": tokenizer,
        "peft_config": lora_config(cfg),
        "callbacks": [t.counts_checkpoint(counts), *extra_callbacks],
        "counts": counts,
    }
    if kind == "onpolicy":
        from trl import DistillationConfig

        args = trl_arguments(
            DistillationConfig,
            cfg,
            work,
            len(rows),
            beta=beta_of(params),
            temperature=params["sample_temperature"],
            max_completion_length=params["max_new_tokens"],
            shuffle_dataset=True,
        )
        return t.onpolicy_trainer_class()(args=args, **common)
    from trl.experimental.gkd import GKDConfig

    args = trl_arguments(
        GKDConfig,
        cfg,
        work,
        len(rows),
        beta=beta_of(params),
        lmbda=params["lmbda"],
        seq_kd=params["seq_kd"],
        temperature=params["sample_temperature"],
        max_new_tokens=params["max_new_tokens"],
        max_length=cfg.max_length,
        disable_dropout=True,
    )
    return t.gkd_trainer_class()(args=args, **common)


def training_function(kind: str, params: dict, teacher_path: str, teacher_fingerprint: str, counts, log=print):
    """``run_training`` for ``ctx.train_student_with``: TRL's trainer of ``kind`` on the examples,
    resumable from its checkpoints, the merged student written to ``out_dir``."""

    def run_training(base_path, examples, out_dir, cfg, tokenizer, callbacks=()):
        import torch
        from cotgap_plugins import _distill_trainers as t

        out_dir = Path(out_dir)
        work = out_dir.parent / (out_dir.name + ".work")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # TRL generates from left-padded prompts
        rows = prompt_rows(examples) if kind == "onpolicy" else rationale_rows(examples, tokenizer, cfg.max_length)
        if not rows:
            raise UserError(f"no rationale fits training.max_length = {cfg.max_length} tokens: raise training.max_length")
        key = inputs_key(kind, params, base_path, teacher_fingerprint, rows, {k: v for k, v in vars(cfg).items()})
        resume = resume_point(work, key, log)
        torch.manual_seed(cfg.seed)
        student, teacher = load_models(base_path, teacher_path, params.get("teacher_dtype") or "float32")
        trainer = trainer_for(kind, params, cfg, work, rows, student, teacher, tokenizer, counts, callbacks)
        t.restore(counts, resume)
        log(f"  distilling ({kind}, beta {beta_of(params)}) on {len(rows)} prompts, {updates(cfg, len(rows))} updates")
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        extra = {
            "distillation": {"trainer": type(trainer).__mro__[1].__name__, "beta": beta_of(params), "counts": counts.state()}
        }
        result = write_outputs(trainer, tokenizer, cfg, out_dir, len(rows), extra)
        shutil.rmtree(work, ignore_errors=True)
        return result

    return run_training


# -- what both strategies' hooks do ---------------------------------------------------------------
def check(ctx, strategy: str) -> None:
    """Refuse before any work: one model teacher with logits here, sharing the student's vocabulary
    (the core has checked that it is larger than the student)."""
    teacher = teacher_for_logits(ctx, strategy)
    check_shared_vocabulary(strategy, ctx.student, teacher, log=ctx.log)


def completion_budget(ctx, params: dict) -> int:
    """Tokens a sample may have: the parameter, else the run's generation budget, else the task's."""
    if params.get("max_new_tokens"):
        return int(params["max_new_tokens"])
    if ctx.config.generation.max_new_tokens:
        return int(ctx.config.generation.max_new_tokens)
    return int((ctx.train_task().config.generation_kwargs or {}).get("max_gen_toks") or 256)


def train(ctx, strategy: str, kind: str, data: dict):
    """Distil the teacher into the student on the kept records' questions (``onpolicy``) or
    rationales (``gkd``); the counts go to the compute ledger and ``<strategy>.training``."""
    from cotgap_plugins import _distill_trainers as t

    teacher = ctx.teachers[0]
    params = {**ctx.params, "max_new_tokens": completion_budget(ctx, ctx.params)}
    records = [r for recs in data.values() for r in recs]
    counts = t.Counts()
    fn = training_function(kind, params, teacher.path(log=ctx.log), teacher.fingerprint, counts, log=ctx.log)
    ctx.compute.watch("train", counts.state)  # a budget stop reads the counts while training runs
    try:
        result = ctx.train_student_with(fn, records)
    finally:
        ctx.compute.watch("train", None)
    ctx.compute.add("train", **counts.state())
    ctx.record(
        f"{strategy}.training",
        {
            "trainer": result.extra["distillation"]["trainer"],
            "teacher": teacher.spec,
            "beta": beta_of(params),
            "max_new_tokens": params["max_new_tokens"],
            "updates": result.updates,
            "prompts": result.examples,
            **counts.state(),
        },
    )
    return result
