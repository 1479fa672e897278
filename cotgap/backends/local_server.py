"""A model served by a local ``vllm serve`` that cotgap starts and stops.

Used where vLLM's in-process ``LLM`` cannot go: data parallelism (``LLM(data_parallel_size=N)``
is refused by vLLM; its server balances requests over N engine replicas itself). cotgap renders
the prompt with the model's own tokenizer exactly as the in-process engine would and sends it to
the server's completions endpoint through lm-eval's ``local-completions`` model (concurrency,
retries), so outputs match the in-process engine's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lm_eval.models.openai_completions import LocalCompletionsAPI

from cotgap.backends.counted_lm import CountedRequests
from cotgap.errors import UserError

#: Engine arguments of ``vllm.LLM`` that ``vllm serve`` spells differently or does not take.
_NOT_FLAGS = ("seed",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_flags(args: dict) -> list[str]:
    """``vllm.LLM`` keyword arguments as ``vllm serve`` flags (``max_model_len`` -> ``--max-model-len``)."""
    flags: list[str] = []
    for k, v in sorted(args.items()):
        if k in _NOT_FLAGS or v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        if v is True:
            flags.append(flag)
        else:
            flags += [flag, json.dumps(v) if isinstance(v, (dict, list)) else str(v)]
    return flags


class LocalServer:
    """One ``vllm serve`` process on 127.0.0.1; its log goes to a file."""

    def __init__(
        self,
        model: str,
        args: dict,
        *,
        seed: int = 0,
        log_path: Path | None = None,
        env: dict | None = None,
        port: int | None = None,
    ):
        self.model = model
        self.port = port or free_port()
        self.log_path = Path(log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"cotgap-vllm-serve-{self.port}.log")
        self.cmd = [
            sys.executable,
            "-m",
            "cotgap.backends.vllm_serve",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--seed",
            str(seed),
            *serve_flags(args),
        ]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 900) -> LocalServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
                raise UserError(
                    f"vllm serve {self.model} exited with code {self.proc.returncode}: {tail[0]} (log: {self.log_path})"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(1)
        self.stop()
        raise UserError(f"vllm serve {self.model} did not become ready in {timeout:.0f} s (log: {self.log_path})")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class ServedLM(CountedRequests, LocalCompletionsAPI):
    """lm-eval's completions client against a ``LocalServer`` it owns; prompts rendered locally;
    requests counted on cotgap's progress (``counted_lm``)."""

    def __init__(self, path: str, args: dict, *, seed: int = 0, concurrency: int | None = None):
        self.server = LocalServer(path, args, seed=seed).start()
        n = concurrency or int(args.get("max_num_seqs") or 64) * int(args.get("data_parallel_size") or 1)
        super().__init__(
            base_url=f"{self.server.base_url}/completions",
            model=path,
            num_concurrent=n,
            tokenizer_backend="huggingface",
            tokenized_requests=False,
            seed=seed,
            max_retries=3,
        )

    def chat_template(self, chat_template: bool | str = False):
        return getattr(self.tokenizer, "chat_template", None)

    def apply_chat_template(self, chat_history, add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)

    @property
    def tokenizer_name(self) -> str:
        return self.model.replace("/", "__")

    def shutdown(self) -> None:
        self.server.stop()
