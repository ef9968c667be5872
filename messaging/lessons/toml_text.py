"""A lesson as the text of a lesson file: the builder writes what `spec.lesson_parse` reads.

Python reads TOML (tomllib) but does not write it, and the lesson format needs only a small
part of TOML: so this writes that part, in the layout of the files in lessons/ (top-level keys,
then [start], then one [[...]] table per goal, step, prediction and quiz item), which makes an
exported lesson read like the ones a person wrote. `lesson_parse(lesson_toml(data))` gives back
the lesson `data` describes (tests/lessons/test_builder_toml.py checks it on every lesson file).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# Characters TOML refuses raw in a string (all control characters but tab, and DEL).
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
TOP_SCALARS = ("slug", "title", "order", "summary", "points", "view")
TOP_TEXTS = ("intro", "takeaway")
TABLE_ARRAYS = ("goals", "solution", "wrong", "predictions", "quiz")


def _key(name: str) -> str:
    return name if BARE_KEY.match(name) else _string(name)


def _string(text: str) -> str:
    # A JSON string is a TOML basic string, except that JSON leaves DEL raw.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _text(text: str) -> str:
    """Paragraphs as a multi-line literal string, as people write them; anything a literal
    string cannot hold as it is (a quote, a control character) as a basic string."""
    if "\n" in text and "'" not in text and not CONTROL.search(text.replace("\n", "")):
        return f"'''\n{text}'''"
    return _string(text)


def value(item: Any) -> str:
    """One TOML value: inline arrays and inline tables for what is nested."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError("a lesson holds finite numbers only")
        return repr(item)
    if isinstance(item, str):
        return _string(item)
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        if not item:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {value(v)}" for k, v in item.items()) + " }"
    raise TypeError(f"a lesson cannot hold {type(item).__name__}")


def _lines(table: dict[str, Any], texts: tuple[str, ...] = ()) -> list[str]:
    return [f"{_key(k)} = {_text(v) if k in texts else value(v)}" for k, v in table.items()]


def lesson_toml(data: dict[str, Any]) -> str:
    """`data` (shaped like a lesson file, as `spec.spec_to_dict` returns) as a lesson file."""
    top = {k: data[k] for k in TOP_SCALARS if k in data}
    top.update({k: data[k] for k in TOP_TEXTS if k in data})
    if "hints" in data:
        top["hints"] = data["hints"]
    known = set(TOP_SCALARS) | set(TOP_TEXTS) | {"hints", "start"} | set(TABLE_ARRAYS)
    top.update({k: v for k, v in data.items() if k not in known})  # the validator names these
    out = _lines(top, TOP_TEXTS)
    start = data.get("start")
    if start is not None:
        out += ["", "[start]"]
        nested = {k: v for k, v in start.items() if k != "steps"}
        for name, items in nested.items():
            if isinstance(items, list) and len(items) > 1:
                out.append(f"{_key(name)} = [")
                out += [f"  {value(item)}," for item in items]
                out.append("]")
            else:
                out.append(f"{_key(name)} = {value(items)}")
        for step in start.get("steps", []):
            out += ["", "[[start.steps]]", *_lines(step)]
    for name in TABLE_ARRAYS:
        items = data.get(name)
        if not isinstance(items, list):
            if items is not None:
                out += [f"{_key(name)} = {value(items)}"]  # the validator says what is wrong
            continue
        if not items:
            # An empty array of tables has no [[...]] header: it is written as the key itself,
            # which must come before the first header to stay at the top level.
            out.insert(len(_lines(top, TOP_TEXTS)), f"{name} = []")
            continue
        for item in items:
            out += ["", f"[[{name}]]", *_lines(item)]
    return "\n".join(out) + "\n"
