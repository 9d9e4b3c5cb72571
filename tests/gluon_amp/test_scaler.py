"""The loss scalers as pure state machines: trajectories, hysteresis, floor, state, validation."""

import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gluon_amp as amp

INF, NAN = math.inf, math.nan
MISSING = object()  # a key left out of a state


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
        ({"growth_factor": 1.0}, "growth_factor must be a finite number > 1"),
        ({"growth_factor": INF, "max_scale": INF}, "growth_factor must be a finite number > 1"),
        ({"growth_factor": NAN}, "growth_factor must be a finite number > 1"),
        ({"backoff_factor": 1.0}, r"backoff_factor must be in \(0, 1\)"),
        ({"backoff_factor": 0.0}, r"backoff_factor must be in \(0, 1\)"),
        ({"backoff_factor": NAN}, r"backoff_factor must be in \(0, 1\)"),
        ({"growth_interval": 0}, "growth_interval must be an integer >= 1"),
        ({"growth_interval": 2.5}, "growth_interval must be an integer >= 1"),
        ({"hysteresis": 0}, "hysteresis must be an integer >= 1"),
        ({"min_scale": 0.0}, "min_scale must be a finite number > 0"),
        ({"min_scale": INF, "max_scale": INF}, "min_scale must be a finite number > 0"),
        ({"min_scale": NAN}, "min_scale must be a finite number > 0"),
        ({"init_scale": -1.0}, "scale must be a finite number > 0"),
        ({"init_scale": INF, "max_scale": INF}, "scale must be a finite number > 0"),
        ({"init_scale": NAN}, "scale must be a finite number > 0"),
        ({"init_scale": 2.0**128, "max_scale": INF}, r"at most 2\*\*127 \(float32's largest"),
        ({"init_scale": 2.0**30}, r"init_scale must be in \[min_scale, max_scale\]"),
        ({"init_scale": 0.5}, r"init_scale must be in \[min_scale, max_scale\]"),
        ({"min_scale": 4.0, "max_scale": 2.0}, "max_scale must be >= min_scale"),
        ({"max_scale": NAN}, r"max_scale must be >= min_scale=1.0 \(inf for no ceiling\)"),
    ],
)
def test_nonsense_arguments_raise_valueerror_naming_the_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        amp.DynamicLossScaler(**kwargs)


def test_numpy_integers_are_integers():
    assert amp.DynamicLossScaler(growth_interval=np.int64(3)).growth_interval == 3


@pytest.mark.parametrize("scale", [0.0, INF, NAN, 2.0**128])
def test_static_scale_must_be_positive_finite_and_a_float32_scale(scale):
    with pytest.raises(ValueError, match="scale must be a finite number > 0 and at most 2"):
        amp.StaticLossScaler(scale)


@pytest.mark.parametrize("growth_factor", [2.0, 1e300])
def test_no_ceiling_grows_up_to_float32s_largest_power_of_two_and_stays_finite(growth_factor):
    s = amp.DynamicLossScaler(
        init_scale=2.0**120, growth_factor=growth_factor, growth_interval=1, max_scale=INF
    )
    scales, _ = run(s, [False] * 12)
    assert scales[-1] == amp.scaler.MAX_SCALE == 2.0**127 == max(scales)
    assert all(math.isfinite(scale) for scale in scales)
    assert run(s, [True])[0] == [2.0**126]  # backs off from there as from any scale
    assert amp.DynamicLossScaler(max_scale=INF).state_dict()["max_scale"] == INF


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
        ({"hysteresis": MISSING}, "loss-scaler state lacks hysteresis"),
        # The constructor's rules hold for a loaded state too.
        ({"growth_factor": INF, "max_scale": INF}, "growth_factor must be a finite number > 1"),
        ({"scale": INF, "max_scale": INF}, "scale must be a finite number > 0"),
        ({"scale": 2.0**128, "max_scale": INF}, r"at most 2\*\*127"),
        ({"min_scale": INF, "max_scale": INF}, "min_scale must be a finite number > 0"),
        ({"max_scale": NAN}, "max_scale must be >= min_scale"),
        ({"growth_factor": "2"}, "loss-scaler state has growth_factor='2', not a number"),
        ({"growth_interval": 2.0}, "loss-scaler state has growth_interval=2.0, not an integer"),
        ({"last_skipped": 1}, "loss-scaler state has last_skipped=1, not True or False"),
        ({"num_steps": -1}, "loss-scaler state has num_steps=-1, not >= 0"),
        ({"clean_steps": None}, "loss-scaler state has clean_steps=None, not an integer"),
    ],
)
def test_a_bad_state_is_refused_and_changes_nothing(change, message):
    scaler = amp.DynamicLossScaler(init_scale=8.0, growth_interval=2)
    run(scaler, [False, True, False])
    before = scaler.state_dict()
    state = {k: v for k, v in {**before, **change}.items() if v is not MISSING}
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
