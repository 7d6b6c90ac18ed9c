"""wait_until: the one poll-until-deadline loop."""

from __future__ import annotations

import time

from review_sentiment.waiting import wait_until


def test_returns_the_first_truthy_answer():
    answers = iter([None, [], ["ready"]])
    assert wait_until(lambda: next(answers), timeout_s=5, interval_s=0.01) == ["ready"]


def test_returns_the_last_falsy_answer_after_the_deadline_with_a_last_look():
    calls = []
    start = time.monotonic()
    assert wait_until(lambda: calls.append(time.monotonic()) or 0, timeout_s=0.1, interval_s=0.02) == 0
    assert calls[-1] - start > 0.1 and len(calls) >= 3
