"""The fuzz budget: first examples always go out, later ones only within the seconds."""

from __future__ import annotations

from tests.e2e.fuzz_budget import FuzzBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_within_the_budget_every_example_is_sent() -> None:
    clock = Clock()
    budget = FuzzBudget(10, clock)
    assert all(budget.admit("GET /a") for _ in range(5))
    assert budget.sent["GET /a"] == 5
    assert budget.saved == 0


def test_past_the_budget_only_an_operations_first_example_is_sent() -> None:
    clock = Clock()
    budget = FuzzBudget(10, clock)
    assert budget.admit("GET /a")
    clock.now += 11
    assert not budget.admit("GET /a")
    assert budget.admit("POST /b")  # never tried yet: it still gets one
    assert not budget.admit("POST /b")
    assert budget.sent == {"GET /a": 1, "POST /b": 1}
    assert budget.saved == 2


def test_the_budget_starts_at_the_first_example_not_at_construction() -> None:
    clock = Clock()
    budget = FuzzBudget(10, clock)
    clock.now += 60  # the stack took a minute to start
    assert budget.admit("GET /a")
    assert budget.admit("GET /a")
