"""Reading times given by users: seconds (``90``, ``2.5``) or FFmpeg's ``[HH:]MM:SS[.mmm]``."""

from __future__ import annotations

import math
import re

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_time(text: str) -> float:
    """``text`` in seconds; raises ValueError (with a message for users) when it is not a time."""
    value = str(text).strip()
    match = _CLOCK.match(value)
    if match:
        hours, minutes, seconds = match.groups()
        if float(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
            raise ValueError(f"'{text}' is not a time: minutes and seconds must be below 60")
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"'{text}' is not a time; use seconds (90, 2.5) or [HH:]MM:SS[.mmm]") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"'{text}' is not a time: it must be a finite number of seconds, at least 0")
    return seconds
