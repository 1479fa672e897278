"""lm-eval's transformers LM (``HFLM``) showing cotgap's progress instead of its tqdm bar
(:class:`cotgap.backends.counted_lm.CountedRequests`)."""

from __future__ import annotations

from lm_eval.models.huggingface import HFLM

from cotgap.backends.counted_lm import CountedRequests


class ProgressHFLM(CountedRequests, HFLM):
    """``HFLM`` whose ``generate_until`` shows requests done / total (see ``cotgap.output``)."""

    def progress_name(self) -> str:
        return self.pretrained if isinstance(self.pretrained, str) else getattr(self.model, "name_or_path", "")
