"""The tiny-model builders live in ``cotgap.testing`` (shipped with the package); this name stays
for the tests that import them from here."""

from cotgap.testing import CHAT_TEMPLATE, build_model, build_tokenizer, corpus

__all__ = ["CHAT_TEMPLATE", "build_model", "build_tokenizer", "corpus"]
