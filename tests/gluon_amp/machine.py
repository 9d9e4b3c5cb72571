"""What this test machine can run: bfloat16 needs a CPU with AVX-512 (see gluon_amp/device.py)."""

import pytest

from gluon_amp.device import cpu_bfloat16_problem

#: Why bfloat16 cannot run on this machine, or None.
NO_BFLOAT16 = cpu_bfloat16_problem()

#: For tests that run bfloat16 kernels outside ``amp.init`` (subprocesses, raw bfloat16 arrays).
needs_bfloat16 = pytest.mark.skipif(
    NO_BFLOAT16 is not None, reason=f"needs bfloat16 kernels: {NO_BFLOAT16}"
)
