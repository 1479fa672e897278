"""docs/api.md documents every name ``cotgap`` exports, and nothing it does not export."""

import re
from pathlib import Path

import cotgap

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_exported_name_has_a_section_and_every_section_is_exported():
    sections = set(re.findall(r"^### `([A-Za-z_]+)`$", DOC.read_text(), flags=re.M))
    assert sections == set(cotgap.__all__)
    for name in cotgap.__all__:  # and each is really there
        assert getattr(cotgap, name) is not None
