"""YAML reading for our config and vocabulary files: libyaml's C loader when PyYAML has it (the pure-Python
loader took 0.4 s of every cold start on the glossary alone), the same safe subset either way."""

from __future__ import annotations

from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, faster."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)
