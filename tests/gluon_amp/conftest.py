"""Shared fixtures: every test starts and ends with AMP off and the legacy front end."""

import mxnet as mx
import pytest

import gluon_amp as amp


@pytest.fixture(autouse=True)
def _amp_off():
    amp.reset()
    mx.npx.reset_np()
    mx.random.seed(0)
    yield
    amp.reset()
    mx.npx.reset_np()
