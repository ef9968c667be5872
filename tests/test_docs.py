"""The examples in the docs are run, so the docs cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def python_blocks(name: str) -> list[str]:
    return BLOCK.findall((DOCS / name).read_text())


def test_it_documents_the_engine_with_runnable_examples():
    assert len(python_blocks("engine.md")) >= 6


@pytest.mark.parametrize("index", range(len(python_blocks("engine.md"))))
def test_it_runs_each_engine_example(index):
    code = python_blocks("engine.md")[index]
    exec(compile(code, f"docs/engine.md[python block {index}]", "exec"), {"__name__": "docs"})
