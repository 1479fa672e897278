"""lm-eval models showing cotgap's progress (a bar, or lines in a log) instead of their tqdm bars.

lm-eval's transformers model (``HFLM``) and its API models (``local-chat-completions``,
``local-completions``) call their cache hook once per answered request; wrapping that hook
(:class:`cotgap.progress.CountingHook`) counts requests without copying lm-eval's loops. cotgap's
vLLM model counts through vLLM's ``use_tqdm`` hook instead (``backends/vllm_lm.py``).
"""

from __future__ import annotations

from cotgap import output, progress


class CountedRequests:
    """A mixin, first among the bases of an lm-eval ``LM``: its ``generate_until`` shows requests
    done / total (see ``cotgap.output``), the library's own bar off while cotgap shows progress."""

    def progress_name(self) -> str:
        """The model's name on the bar: lm-eval's API models keep it in ``model`` (``HFLM`` overrides)."""
        model = getattr(self, "model", None)
        return model if isinstance(model, str) else ""

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        with progress.requests(len(requests), self.progress_name()) as bar:
            if bar is None:
                return super().generate_until(requests, disable_tqdm=disable_tqdm or not output.library_bars())
            hook = self.cache_hook
            self.cache_hook = progress.CountingHook(hook, bar)
            try:
                return super().generate_until(requests, disable_tqdm=True)
            finally:
                self.cache_hook = hook
