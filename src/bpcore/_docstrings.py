"""Docstring assembly: one Parameters section from a class's own entries and
the entries it shares with another estimator; one docstring for methods
documented alike (``docstring``).

The toolbox estimators take every parameter of the drop-ins; their
docstrings document the toolbox's own parameters and take the rest, word for
word, from the drop-ins' (``bpcore.estimators._PARAMS_DOC``), so each
parameter is described once and the reference lists all of them, in the
signature's order (numpydoc's PR01 and PR03 checks, ``tools/check_docstrings.py``).
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

_Func = TypeVar("_Func", bound=Callable[..., Any])

# A parameter entry starts at the section's indentation with "name : type"
# (or "name1, name2 : type"); its description is indented further.
_ENTRY = re.compile(r"^    (\w+(?:, \w+)*) : ", re.MULTILINE)


def docstring(template: str, **fields: str) -> Callable[[_Func], _Func]:
    """Decorator: the function's docstring is ``template.format(**fields)``.

    For methods that share their sections word for word (the callback
    protocol hooks of ``bpcore.callbacks.Callback``): the text is written once
    and each method fills in what differs.
    """
    def decorate(func: _Func) -> _Func:
        func.__doc__ = template.format(**fields)
        return func
    return decorate


def parameter_entries(section: str) -> dict[str, str]:
    """``{names: entry text}`` of a numpydoc Parameters section body."""
    starts = [(m.start(), m.group(1)) for m in _ENTRY.finditer(section)]
    entries = {}
    for (start, names), (end, _) in zip(starts, starts[1:] + [(len(section), "")]):
        entries[names] = section[start:end].rstrip("\n") + "\n"
    return entries


def complete_parameters(cls: type, shared: str) -> None:
    """Rewrite ``cls.__doc__``'s Parameters section to document every
    ``__init__`` parameter, in the signature's order: its own entries first
    choice, then those of ``shared`` (a Parameters section body)."""
    doc = cls.__doc__ or ""
    head, sep, rest = doc.partition("    Parameters\n    ----------\n")
    if not sep:
        raise ValueError(f"{cls.__name__}'s docstring has no Parameters section")
    nxt = re.search(r"^    \w[\w ]*\n    -{3,}\n", rest, re.MULTILINE)
    own_text, tail = (rest[:nxt.start()], rest[nxt.start():]) if nxt else (rest, "")
    own, common = parameter_entries(own_text), parameter_entries(shared)
    by_name: dict[str, tuple[str, str]] = {}
    for source in (common, own):  # own entries override shared ones
        for names, text in source.items():
            for name in names.split(", "):
                by_name[name] = (names, text)
    ordered, seen = [], set()
    for name in inspect.signature(cls).parameters:
        if name not in by_name:
            continue
        names, text = by_name[name]
        if names not in seen:
            seen.add(names)
            ordered.append(text)
    cls.__doc__ = head + sep + "".join(ordered) + "\n" + tail
