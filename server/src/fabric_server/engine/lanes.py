"""Fair use of a worker's slots: lanes by kind of work, shares by organization.

A worker's slots are split into lanes so that one kind of work never holds all of them:
`control` (starting and cancelling runs, approval time-outs: short, never kept waiting
behind other work), `delivery` (webhook deliveries, which wait on receivers outside) and
`compute` (jobs and workflow nodes).

In a lane, items are *held* (leased to this worker: running, or waiting in memory for a
slot) up to the lane's capacity, and one organization holds at most as many as the lane has
slots, so another's work always finds room. Of the held items, an organization *runs* up to
its share of the slots; beyond it only while no other organization has items waiting, and
never into the lane's last reserve slots — so when another organization's work arrives, a
slot is free for it at once, however long the first one's work runs. Waiting items start
round-robin across organizations. Claim candidates come ordered by turn (each
organization's next item, then every organization's second, …), so one organization's
backlog never hides another's item behind it.

Everything here is decisions on counts; the worker and the queue do the I/O.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

CONTROL = "control"
DELIVERY = "delivery"
COMPUTE = "compute"

T = TypeVar("T")


@dataclass(frozen=True)
class Lane:
    name: str
    #: Items running at once.
    slots: int
    #: Fraction of the slots one organization runs while others have items waiting.
    share: float = 0.5
    #: Slots an organization over its share never takes.
    reserve: int = 1

    @property
    def org_share(self) -> int:
        return max(1, math.floor(self.slots * self.share))

    @property
    def capacity(self) -> int:
        """Items held at once: the slots, and as many again waiting in memory."""
        return self.slots * 2


@dataclass(frozen=True)
class Candidate:
    """A runnable item as a claim sees it: whose it is and its turn among that
    organization's waiting items (1 = its next)."""

    id: str
    organization_id: str | None
    turn: int


@dataclass
class Allotment(Generic[T]):
    """What one lane of a worker holds, and which held item runs next."""

    lane: Lane
    running: Counter[str] = field(default_factory=Counter)
    reserved: Counter[str] = field(default_factory=Counter)
    waiting: dict[str, deque[T]] = field(default_factory=dict)
    _turns: deque[str] = field(default_factory=deque)

    # -- holding -------------------------------------------------------------------------

    def held(self, org: str | None) -> int:
        key = org or ""
        queue = self.waiting.get(key)
        return self.running[key] + self.reserved[key] + (len(queue) if queue else 0)

    @property
    def held_total(self) -> int:
        waiting = sum(len(queue) for queue in self.waiting.values())
        return sum(self.running.values()) + sum(self.reserved.values()) + waiting

    def may_hold(self, org: str | None, spare: int = 0) -> bool:
        capacity, per_org = self.lane.capacity + spare, self.lane.slots + spare
        return self.held_total < capacity and self.held(org) < per_org

    def reserve(self, org: str | None, *, replacing: bool = False) -> bool:
        """Room for an item of `org` on its way (created here, or being claimed).
        `replacing`: it follows an item of `org` that is about to finish (the next node of
        a run), so it may use that item's place."""
        if not self.may_hold(org, spare=1 if replacing else 0):
            return False
        self.reserved[org or ""] += 1
        return True

    def unreserve(self, org: str | None) -> None:
        _decrement(self.reserved, org or "")

    def pick(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates to claim, each with a reservation taken."""
        return [
            c for c in sorted(candidates, key=lambda c: c.turn) if self.reserve(c.organization_id)
        ]

    def arrive(self, org: str | None, item: T) -> None:
        """A reserved item is here (committed, or claimed): it waits for a slot."""
        key = org or ""
        _decrement(self.reserved, key)
        queue = self.waiting.get(key)
        if queue is None:
            queue = self.waiting[key] = deque()
            self._turns.append(key)
        queue.append(item)

    # -- running -------------------------------------------------------------------------

    def next_to_run(self) -> T | None:
        """The waiting item to start now (round-robin across organizations), or None."""
        for _ in range(len(self._turns)):
            org = self._turns[0]
            self._turns.rotate(-1)
            if self._may_run(org):
                queue = self.waiting[org]
                item = queue.popleft()
                if not queue:
                    del self.waiting[org]
                    self._turns.remove(org)
                self.running[org] += 1
                return item
        return None

    def finished(self, org: str | None) -> None:
        _decrement(self.running, org or "")

    def _may_run(self, org: str) -> bool:
        lane, running = self.lane, sum(self.running.values())
        if running >= lane.slots:
            return False
        if self.running[org] < lane.org_share:
            return True
        others_waiting = any(key != org for key in self.waiting)
        return not others_waiting and running < lane.slots - lane.reserve

    # -- leaving ---------------------------------------------------------------------------

    def all_waiting(self) -> Iterator[T]:
        for queue in self.waiting.values():
            yield from queue

    def take_waiting(self) -> list[T]:
        """Every waiting item, no longer held (the worker stops)."""
        items = list(self.all_waiting())
        self.waiting.clear()
        self._turns.clear()
        return items

    def drop(self, keep: Callable[[T], bool]) -> None:
        """Forget waiting items `keep` refuses (their lease was lost)."""
        for org in list(self.waiting):
            queue = deque(item for item in self.waiting[org] if keep(item))
            if queue:
                self.waiting[org] = queue
            else:
                del self.waiting[org]
                self._turns.remove(org)


def build_lanes(*, compute_slots: int, delivery_slots: int, control_slots: int) -> list[Lane]:
    return [
        Lane(COMPUTE, compute_slots, reserve=max(1, compute_slots // 8)),
        Lane(DELIVERY, delivery_slots, reserve=max(1, delivery_slots // 8)),
        # Control work is short: any organization may use every slot.
        Lane(CONTROL, control_slots, share=1.0, reserve=0),
    ]


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
