"""The examples run as a user runs them (``python -m examples.<name>``) and print what they promise."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "order": ["order A-1 (order-A-1): {'charge': 'charge-A-1'", "order B-2 failed and was compensated",
              "status of B-2: FAILED"],
    "fanout": ["best quote for widget: {'cheapest': 'supplier-0'"],
    "approval": ["EXP-7: approved by dana", "EXP-8: rejected (no answer)"],
    "tickets": ["T-1 opened twice, one workflow: True", "'notes': ['customer reports a 500 on checkout', 'reproduced']",
                "first attempt: the fix for T-1 needs a database migration first",
                "after retry: T-1 fixed after 2 note(s)", "globex tickets: True", "was cancelled: account closed"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_prints_its_outcome(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    importlib.import_module(f"examples.{name}").main()
    printed = capsys.readouterr().out
    for line in EXPECTED[name]:
        assert line in printed, f"examples.{name} did not print {line!r}:\n{printed}"
