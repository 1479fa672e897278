"""lm-eval's transformers LM (``HFLM``) drawing cotgap's progress bar instead of its tqdm bar.

``HFLM.generate_until`` calls its cache hook once per request as each batch finishes: wrapping
that hook (:class:`cotgap.progress.CountingHook`) counts requests without copying lm-eval's loop.
"""

from __future__ import annotations

from lm_eval.models.huggingface import HFLM

from cotgap import output, progress


class ProgressHFLM(HFLM):
    """``HFLM`` whose ``generate_until`` shows requests done / total (see ``cotgap.output``)."""

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        name = self.pretrained if isinstance(self.pretrained, str) else getattr(self.model, "name_or_path", "")
        with progress.requests(len(requests), name) as bar:
            if bar is None:
                return super().generate_until(requests, disable_tqdm=disable_tqdm or not output.library_bars())
            hook = self.cache_hook
            self.cache_hook = progress.CountingHook(hook, bar)
            try:
                return super().generate_until(requests, disable_tqdm=True)
            finally:
                self.cache_hook = hook
