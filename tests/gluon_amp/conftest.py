"""Shared fixtures: every test starts and ends with AMP off and the legacy front end.

On a CPU without bfloat16 kernels (no AVX-512), ``amp.init('bfloat16')`` raises
``BFloat16UnavailableError``; a test stopped by exactly that error is reported as skipped, with
the reason, rather than failed. On a CPU with AVX-512 the same tests run in full.
"""

import mxnet as mx
import pytest
from machine import NO_BFLOAT16

import gluon_amp as amp


@pytest.fixture(autouse=True)
def _amp_off():
    amp.reset()
    mx.npx.reset_np()
    mx.random.seed(0)
    yield
    amp.reset()
    mx.npx.reset_np()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    error = call.excinfo.value if call.excinfo is not None else None
    if NO_BFLOAT16 is not None and isinstance(error, amp.BFloat16UnavailableError):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1], f"needs bfloat16 kernels: {error}")
