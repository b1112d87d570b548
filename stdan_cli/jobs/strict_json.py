"""Reading the JSON files of a work folder as untrusted data: one small schema check.

A work folder may be damaged (a disk error, a hand edit, another program); whatever is in it
becomes :class:`Damaged` with a reason a person can read, never a traceback or a wrong
value taken as right: no NaN or infinite numbers, no nesting deeper than the files need, no
file larger than :data:`LIMIT`, and every field of the expected type (a ``bool`` is only
``true``/``false``, an ``int`` never a ``bool`` or a float).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from stdan_cli.safe_files import NotRegular, read_limited

LIMIT = 64 * 2**20  # bytes; a manifest of a day-long video at one chunk a second is about 30 MiB
MAX_DEPTH = 8  # the deepest a work folder's file nests (manifest -> options -> tiles -> tile -> value)


class Damaged(ValueError):
    """A work folder file that is not what this tool writes."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Damaged(f"the number {text} is out of range")
    return value


def _no_constant(name: str):
    raise Damaged(f"{name} is not a number")


def _depth(value, limit: int) -> int:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise Damaged(f"nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
    return 0


def parse(raw: bytes, max_depth: int = MAX_DEPTH):
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise Damaged(f"nested deeper than {max_depth} levels") from None
    except Damaged:
        raise
    except ValueError as exc:  # also UnicodeDecodeError, and an integer of too many digits
        raise Damaged(f"not JSON ({exc})") from None
    _depth(value, max_depth)
    return value


def load(path: Path, max_depth: int = MAX_DEPTH):
    """The parsed contents of the work-folder file ``path`` (``FileNotFoundError`` when absent)."""
    try:
        return parse(read_limited(path, LIMIT), max_depth)
    except NotRegular:
        raise Damaged("not a regular file") from None
    except ValueError as exc:
        raise Damaged(str(exc)) from None


# --- typed access ----------------------------------------------------------------------------


def obj(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise Damaged(f"{where} is not an object")
    return value


def get(data: dict, key: str, kind: str, where: str = "", optional: bool = False):
    """``data[key]`` checked to be of ``kind`` ('int', 'nat' (int >= 0), 'bool', 'str', 'number',
    'object', 'list', 'any'); None allowed only when ``optional`` (a missing key is None then)."""
    name = f"{where}{'.' if where else ''}{key}"
    if key not in data:
        if optional:
            return None
        raise Damaged(f"{name} is missing")
    value = data[key]
    if value is None and optional:
        return None
    ok = {
        "int": type(value) is int,
        "nat": type(value) is int and value >= 0,
        "bool": type(value) is bool,
        "str": type(value) is str,
        "number": type(value) in (int, float),
        "object": type(value) is dict,
        "list": type(value) is list,
        "any": True,
    }[kind]
    if not ok:
        wanted = {"nat": "a whole number >= 0", "int": "a whole number", "bool": "true or false", "str": "text",
                  "number": "a number", "object": "an object", "list": "a list"}[kind]
        raise Damaged(f"{name} is not {wanted}")
    return value
