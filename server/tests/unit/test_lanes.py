"""The lane rules: how a worker's slots are shared between organizations (no I/O)."""

from __future__ import annotations

from fabric_server.engine.lanes import Allotment, Candidate, Lane


def held_items(allotment: Allotment[str], org: str, count: int) -> None:
    for n in range(count):
        assert allotment.reserve(org)
        allotment.arrive(org, f"{org}-{n}")


def start_all(allotment: Allotment[str]) -> list[str]:
    started = []
    while (item := allotment.next_to_run()) is not None:
        started.append(item)
    return started


def test_one_organization_alone_uses_all_but_the_reserve() -> None:
    lane = Allotment[str](Lane("compute", slots=8, share=0.5, reserve=2))
    held_items(lane, "a", 8)

    assert len(start_all(lane)) == 6  # 8 slots, 2 kept for whoever comes next


def test_a_newcomer_starts_at_once_however_busy_the_first_is() -> None:
    lane = Allotment[str](Lane("compute", slots=4, share=0.5, reserve=1))
    held_items(lane, "a", 4)
    assert start_all(lane) == ["a-0", "a-1", "a-2"]

    held_items(lane, "b", 1)

    assert start_all(lane) == ["b-0"]


def test_with_others_waiting_an_organization_runs_its_share_only() -> None:
    lane = Allotment[str](Lane("compute", slots=4, share=0.5, reserve=1))
    held_items(lane, "a", 4)
    held_items(lane, "b", 4)

    started = start_all(lane)

    assert sorted(started) == ["a-0", "a-1", "b-0", "b-1"]  # two each, alternating


def test_a_finished_item_lets_the_next_organization_in_turn_start() -> None:
    lane = Allotment[str](Lane("compute", slots=2, share=0.5, reserve=0))
    held_items(lane, "a", 2)
    held_items(lane, "b", 2)
    assert start_all(lane) == ["a-0", "b-0"]

    lane.finished("a")

    assert start_all(lane) == ["a-1"]  # a is under its share again; b is at it


def test_one_organization_holds_at_most_a_lanes_worth() -> None:
    lane = Allotment[str](Lane("compute", slots=3))
    held_items(lane, "a", 3)

    assert not lane.reserve("a")
    assert lane.reserve("b")  # room kept for others


def test_claims_go_by_turns_so_a_backlog_hides_nobody() -> None:
    lane = Allotment[str](Lane("compute", slots=2))
    backlog = [Candidate(f"a{n}", "a", n + 1) for n in range(6)]

    picked = lane.pick([*backlog, Candidate("b0", "b", 1)])

    assert [c.id for c in picked] == ["a0", "b0", "a1"]  # a holds at most 2 of 4 places


def test_items_without_an_organization_form_a_group_of_their_own() -> None:
    lane = Allotment[str](Lane("control", slots=2, share=1.0, reserve=0))
    assert lane.reserve(None)
    lane.arrive(None, "system")

    assert lane.next_to_run() == "system"
    lane.finished(None)
    assert lane.held(None) == 0
