"""The emulator understands titles in single quotes, as people type them."""

from __future__ import annotations

import pytest

from nemo_sync.emulator._intent import parse


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("add the title 'Urban Dreams' for 3 seconds", ("Urban Dreams", 3000)),
        ("add a title ‘Night Lights’ for 2s", ("Night Lights", 2000)),
        ("don't forget the title 'Go'", ("Go", 3000)),  # an apostrophe is not a quote
        ('add the title "Both" for 1 second', ("Both", 1000)),
    ],
)
def test_single_and_double_quoted_titles(text: str, title: tuple[str, int]) -> None:
    assert parse(text).title == title
