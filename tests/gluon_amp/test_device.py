"""bfloat16 needs a CPU with AVX-512: read from the CPU flags, refused at amp.init with a reason."""

import mxnet as mx
import pytest
from mxnet import gluon

import gluon_amp as amp
from gluon_amp import autocast, device

MILAN = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma f16c\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 amx_bf16\n"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(SAPPHIRE_RAPIDS)
    assert {"avx512f", "avx512_bf16", "amx_bf16"} <= device.cpu_flags.__wrapped__(str(cpuinfo))
    assert device.cpu_flags.__wrapped__(str(tmp_path / "missing")) is None


def test_a_cpu_without_avx512_is_named_with_the_missing_flags(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(MILAN)
    read = device.cpu_flags.__wrapped__
    monkeypatch.setattr(device, "cpu_flags", lambda: read(str(cpuinfo)))
    problem = device.cpu_bfloat16_problem.__wrapped__()
    assert problem.startswith("this CPU has no AVX-512 (avx512f, avx512bw, avx512vl, avx512dq")


def test_with_the_flags_mxnet_itself_is_asked(monkeypatch):
    """The flags can say yes while MXNet cannot (oneDNN off): the answer is MXNet's own kernel."""
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset(device.AVX512_CORE))
    calls = []
    real = mx.nd.FullyConnected

    def fully_connected(*args, **kwargs):
        calls.append(args[0].dtype)
        return real(*args, **kwargs)

    monkeypatch.setattr(mx.nd, "FullyConnected", fully_connected)
    problem = device.cpu_bfloat16_problem.__wrapped__()
    assert calls == [amp.autocast.bfloat16]
    if problem is not None:  # this machine's MXNet has no bfloat16 GEMM
        assert "no bfloat16 FullyConnected kernel" in problem


def test_init_refuses_bfloat16_where_it_cannot_run_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(autocast, "cpu_bfloat16_problem", lambda: "this CPU has no AVX-512 (x)")
    original = mx.nd.FullyConnected
    for target in ("bfloat16", None):
        with pytest.raises(amp.BFloat16UnavailableError, match=r"no AVX-512 \(x\)\. Run it on a"):
            amp.init(target)
        assert amp.target_dtype() is None and mx.nd.FullyConnected is original


def test_convert_hybrid_block_refuses_bfloat16_for_a_cpu_where_it_cannot_run(monkeypatch):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(8, in_units=8))
    net.initialize()
    net.hybridize()
    net(mx.nd.ones((2, 8)))
    monkeypatch.setattr(autocast, "cpu_bfloat16_problem", lambda: "this CPU has no AVX-512 (x)")
    with pytest.raises(amp.BFloat16UnavailableError, match="no AVX-512"):
        amp.convert_hybrid_block(net, target_dtype="bfloat16")
