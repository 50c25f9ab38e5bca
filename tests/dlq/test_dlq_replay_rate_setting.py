"""``SPINE_REPLAY_RATE``: bulk replays a minute, 60 by default, a positive whole number."""

from __future__ import annotations

import pytest

from spine.config import ConfigError, load_config

pytestmark = pytest.mark.embedded


def test_default_and_explicit_rate() -> None:
    assert load_config({}).replay_rate == 60
    assert load_config({"SPINE_REPLAY_RATE": "5"}).replay_rate == 5


@pytest.mark.parametrize("raw", ["0", "-3", "fast", "1.5"])
def test_a_bad_rate_is_one_line_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config({"SPINE_REPLAY_RATE": raw})
    message = str(excinfo.value)
    assert message.startswith("SPINE_REPLAY_RATE=") and "\n" not in message
    assert "whole number from 1" in message
