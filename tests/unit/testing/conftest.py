"""Helpers shared by the fake providers' tests."""

from __future__ import annotations


def paced(times: list[float], delay_s: float) -> bool:
    """Whether event ``i`` came no sooner than ``i`` delays after the request (``times``:
    seconds since it was sent).

    A bound from the request, not between arrivals: the client's own lateness in reading
    one event shortens the next gap it sees, but cannot make any event early.
    """
    return all(at >= index * delay_s for index, at in enumerate(times))
