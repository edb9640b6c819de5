"""How much a download or an archive may cost: caps and deadlines derived from the known sizes.

A mirror that trickles bytes, streams without end or serves a zip bomb must fail with a clear
error, in bounded time and memory, instead of hanging or filling the disk. Every bound is the
known size of the official file times `MARGIN`, so a genuine archive always fits.
"""

from __future__ import annotations

import math

from movierec.data._movielens._registry import MEMBER_SIZES, Layout

#: Headroom over the known sizes: a re-zipped copy or a slightly newer release still fits.
MARGIN = 1.5
#: The slowest transfer rate the default deadline allows, in bytes per second (100 kB/s).
MIN_RATE = 100_000
#: The default deadline is never shorter than this, in seconds: connecting alone may take a while.
MIN_DEADLINE = 120.0
#: No member of any archive may inflate beyond this, whatever the sizes say (4 GiB).
MAX_MEMBER = 4 << 30


def download_cap(layout: Layout) -> int:
    """Return the default largest number of bytes a download of ``layout`` may receive."""
    return math.ceil(MARGIN * layout.size)


def download_deadline(layout: Layout) -> float:
    """Return the default total time a download of ``layout`` may take, in seconds."""
    return max(MIN_DEADLINE, layout.size / MIN_RATE)


def member_cap(layout: Layout, filename: str | None) -> int:
    """Return how many bytes member ``filename`` (a name inside ``layout.folder``) may inflate to.

    A member of known size gets that size with the margin; any other member (a README, or a file
    whose size is not recorded) at most the whole archive's inflated size with the margin.
    """
    known = MEMBER_SIZES.get(layout.name, {}).get(filename)
    return min(MAX_MEMBER, math.ceil(MARGIN * (layout.inflated if known is None else known)))


def archive_cap(layout: Layout) -> int:
    """Return how many bytes all members of ``layout``'s archive may inflate to, together."""
    return math.ceil(MARGIN * layout.inflated)
