"""Adapters: read other benchmark tools' output into perffarm results.

The contract is in ``base``; every adapter, built-in or not, is found through the
``perffarm.adapters`` entry point group by ``registry``.
"""

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.adapters.registry import adapter_names, detect, get_adapter, parse_path, parse_text

__all__ = [
    "Adapter",
    "AdapterError",
    "InputSource",
    "Parsed",
    "adapter_names",
    "detect",
    "get_adapter",
    "parse_path",
    "parse_text",
]
