"""The harness's own promises (no cluster, no adapter): what a failed wait reports."""
import re

import pytest

from harness import Adapter, Sink


class GrowingSink(Sink):
    """A sink whose record gains one accepted request each time it is read."""

    def __init__(self):  # no process: only the waiting logic is under test
        self.reads = 0

    def requests(self):
        self.reads += 1
        return [{"status": 200}] * self.reads


class GrowingAdapter(Adapter):
    """An adapter whose log gains one "watching" line each time it is read."""

    def __init__(self):
        self.reads = 0

    def logs(self):
        self.reads += 1
        return [{"msg": "watching"}] * self.reads

    def _dead(self):
        return False


def have(excinfo):
    return int(re.search(r"\(have (\d+)\)", str(excinfo.value)).group(1))


@pytest.mark.parametrize("wait", ["wait_requests", "wait_events"])
def test_wait_timeout_message_prints_the_count_at_failure(wait):
    sink = GrowingSink()
    with pytest.raises(AssertionError, match="timed out") as e:
        getattr(sink, wait)(10 ** 9, timeout=0.2)
    # The message reads the record when the wait fails (the last read), not
    # before the wait starts (which said "have 1" here, "have 0" in a test).
    assert have(e) == sink.reads > 2


def test_wait_watching_timeout_message_prints_the_count_at_failure():
    a = GrowingAdapter()
    with pytest.raises(AssertionError, match="timed out") as e:
        a.wait_watching(10 ** 9, timeout=0.2)
    assert have(e) == a.reads > 2
