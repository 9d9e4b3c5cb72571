"""The loss scalers as pure state machines: trajectories, hysteresis, floor, state, validation."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gluon_amp as amp


def run(scaler, overflows):
    """Feed a sequence of overflow flags; return (scale after each step, skipped flags)."""
    scales, skipped = [], []
    for found in overflows:
        skipped.append(scaler.update(found))
        scales.append(scaler.scale)
    return scales, skipped


def test_dynamic_defaults_match_the_documented_ones():
    s = amp.DynamicLossScaler()
    assert (s.scale, s.growth_factor, s.backoff_factor, s.growth_interval) == (
        2.0**16,
        2,
        0.5,
        2000,
    )
    assert (s.min_scale, s.max_scale, s.hysteresis) == (1.0, 2.0**24, 1)
    assert s.loss_scale == s.scale
    assert (s.num_steps, s.num_skipped, s.last_skipped) == (0, 0, False)


def test_backoff_is_immediate_and_growth_after_interval():
    s = amp.DynamicLossScaler(init_scale=8.0, growth_interval=3)
    scales, skipped = run(s, [False, True, False, False, False, False, True])
    assert skipped == [False, True, False, False, False, False, True]
    assert scales == [8.0, 4.0, 4.0, 4.0, 8.0, 8.0, 4.0]
    assert (s.num_steps, s.num_skipped, s.last_skipped) == (7, 2, True)


def test_growth_and_backoff_respect_max_and_min(caplog):
    s = amp.DynamicLossScaler(init_scale=4.0, growth_interval=1, max_scale=8.0, min_scale=2.0)
    assert run(s, [False, False])[0] == [8.0, 8.0]
    with caplog.at_level(logging.WARNING, logger="gluon_amp"):
        assert run(s, [True, True, True])[0] == [4.0, 2.0, 2.0]
    warnings = [r for r in caplog.records if "min_scale" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].name == "gluon_amp"


def test_skipping_at_the_floor_warns_once_per_stay_there(caplog):
    s = amp.DynamicLossScaler(init_scale=1.0, growth_interval=2, hysteresis=2)
    with caplog.at_level(logging.WARNING, logger="gluon_amp"):
        run(s, [True])  # hysteresis: no back-off attempted yet
        assert "min_scale" not in caplog.text
        run(s, [True, True])
        assert caplog.text.count("at min_scale=1 after 2 skipped steps") == 1
        assert run(s, [False, False, True, True, True])[0] == [1.0, 2.0, 2.0, 1.0, 1.0]
    warnings = [r for r in caplog.records if "min_scale" in r.getMessage()]
    assert len(warnings) == 2 and "after 5 skipped steps" in warnings[1].getMessage()


def test_hysteresis_skips_every_overflow_but_backs_off_from_the_nth():
    s = amp.DynamicLossScaler(init_scale=64.0, growth_interval=2, hysteresis=3)
    scales, skipped = run(s, [True, True, True, True, False, False, True, True, True])
    assert skipped == [True, True, True, True, False, False, True, True, True]
    # 3rd overflow since growth backs off, the 4th too; growth resets the count.
    assert scales == [64.0, 64.0, 32.0, 16.0, 16.0, 32.0, 32.0, 32.0, 16.0]


def test_static_scaler_skips_nonfinite_unless_told_not_to():
    s = amp.StaticLossScaler(1.0)
    assert run(s, [False, True, False]) == ([1.0] * 3, [False, True, False])
    assert (s.num_steps, s.num_skipped) == (3, 1)
    quiet = amp.StaticLossScaler(128.0, skip_nonfinite=False)
    assert not quiet.checks_nonfinite
    assert run(quiet, [True])[1] == [False]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"growth_factor": 1.0}, "growth_factor must be > 1"),
        ({"backoff_factor": 1.0}, r"backoff_factor must be in \(0, 1\)"),
        ({"backoff_factor": 0.0}, r"backoff_factor must be in \(0, 1\)"),
        ({"growth_interval": 0}, "growth_interval must be an integer >= 1"),
        ({"growth_interval": 2.5}, "growth_interval must be an integer >= 1"),
        ({"hysteresis": 0}, "hysteresis must be an integer >= 1"),
        ({"min_scale": 0.0}, "min_scale must be a finite number > 0"),
        ({"init_scale": -1.0}, "scale must be a finite number > 0"),
        ({"init_scale": 2.0**30}, r"init_scale must be in \[min_scale, max_scale\]"),
        ({"init_scale": 0.5}, r"init_scale must be in \[min_scale, max_scale\]"),
        ({"min_scale": 4.0, "max_scale": 2.0}, "max_scale must be >= min_scale"),
    ],
)
def test_nonsense_arguments_raise_valueerror_naming_the_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        amp.DynamicLossScaler(**kwargs)


def test_numpy_integers_are_integers():
    assert amp.DynamicLossScaler(growth_interval=np.int64(3)).growth_interval == 3


def test_static_scale_must_be_positive():
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        amp.StaticLossScaler(0.0)


def test_state_dict_round_trip_resumes_the_same_trajectory():
    flags = [False, True, False, False, True, True, False, False, False, False]
    config = dict(init_scale=32.0, growth_interval=2, hysteresis=2, min_scale=2.0)
    reference = amp.DynamicLossScaler(**config)
    expected = run(reference, flags)

    first = amp.DynamicLossScaler(**config)
    head = run(first, flags[:5])
    resumed = amp.DynamicLossScaler()  # default config: everything comes from the state
    resumed.load_state_dict(first.state_dict())
    tail = run(resumed, flags[5:])
    assert (head[0] + tail[0], head[1] + tail[1]) == expected
    assert resumed.state_dict() == reference.state_dict()


def test_loading_another_scaler_type_is_refused():
    with pytest.raises(ValueError, match="cannot load a 'StaticLossScaler' state"):
        amp.DynamicLossScaler().load_state_dict(amp.StaticLossScaler().state_dict())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"scale": -1.0}, "scale must be a finite number > 0"),
        ({"backoff_factor": 2.0}, r"backoff_factor must be in \(0, 1\)"),
        ({"scale": 2.0**30}, r"init_scale must be in \[min_scale, max_scale\]"),
        ({"hysteresis": None}, "loss-scaler state lacks hysteresis"),
    ],
)
def test_a_bad_state_is_refused_and_changes_nothing(change, message):
    scaler = amp.DynamicLossScaler(init_scale=8.0, growth_interval=2)
    run(scaler, [False, True, False])
    before = scaler.state_dict()
    state = {**before, **change}
    state = {k: v for k, v in state.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        scaler.load_state_dict(state)
    assert scaler.state_dict() == before


@settings(max_examples=200, deadline=None)
@given(
    flags=st.lists(st.booleans(), max_size=60),
    cut=st.integers(min_value=0, max_value=60),
    interval=st.integers(min_value=1, max_value=5),
    hysteresis=st.integers(min_value=1, max_value=3),
)
def test_dynamic_scaler_invariants_and_resume_anywhere(flags, cut, interval, hysteresis):
    config = dict(
        init_scale=16.0,
        growth_interval=interval,
        hysteresis=hysteresis,
        min_scale=1.0,
        max_scale=64.0,
    )
    whole = amp.DynamicLossScaler(**config)
    scales, skipped = run(whole, flags)
    assert skipped == flags  # every overflowing step is skipped, no other
    assert all(1.0 <= s <= 64.0 for s in scales)
    assert (whole.num_steps, whole.num_skipped) == (len(flags), sum(flags))
    # The scale only moves by the configured factors.
    for before, after in zip([16.0] + scales, scales):
        assert after in (before, min(before * 2, 64.0), max(before / 2, 1.0))
    cut = min(cut, len(flags))
    first = amp.DynamicLossScaler(**config)
    head = run(first, flags[:cut])
    resumed = amp.DynamicLossScaler()
    resumed.load_state_dict(first.state_dict())
    tail = run(resumed, flags[cut:])
    assert head[0] + tail[0] == scales
    assert resumed.state_dict() == whole.state_dict()
