"""The device line: will the target precision pay off here? GPU answers come from a replaced
capability query (no GPU on the test machines); CPU answers from replaced CPU flags."""

import logging

import mxnet as mx
import pytest

import gluon_amp as amp
from gluon_amp import device, emulate

AVX512 = frozenset(device.AVX512_CORE)


@pytest.fixture
def gpu(monkeypatch):
    """Pretend gpu(0) is the named GPU (emulate.py caches whether a GPU exists: not past this
    test)."""

    def use(name, capability):
        monkeypatch.setattr(device, "gpu_capability", lambda device_id=0: (name, capability))
        monkeypatch.setattr(mx.context, "num_gpus", lambda: 1)
        emulate._no_gpu.cache_clear()

    yield use
    emulate._no_gpu.cache_clear()


@pytest.fixture
def cpu(monkeypatch):
    """Pretend the CPU has these flags (and MXNet runs bfloat16 when AVX-512 is among them)."""

    def use(flags, problem=None):
        monkeypatch.setattr(device, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(device, "cpu_bfloat16_problem", lambda: problem)

    return use


def test_volta_and_newer_have_tensor_cores(gpu):
    gpu("Tesla V100-SXM2-16GB", (7, 0))
    outlook = device.outlook("float16")
    assert outlook.level == logging.INFO
    assert outlook.line == (
        "float16 on gpu(0) Tesla V100-SXM2-16GB (compute capability 7.0): Tensor Cores, expected "
        "to be faster than float32"
    )


def test_pascal_saves_memory_only(gpu):
    gpu("Tesla P100-PCIE-16GB", (6, 0))
    outlook = device.outlook("float16", mx.gpu(0))
    assert outlook.level == logging.WARNING
    assert "compute capability 6.0): no Tensor Cores" in outlook.line
    assert "saves memory but GEMMs and convolutions are not faster" in outlook.line


def test_a_gpu_whose_capability_cannot_be_read(monkeypatch):
    monkeypatch.setattr(device, "gpu_capability", lambda device_id=0: None)
    outlook = device.outlook("float16", mx.gpu(1))
    assert outlook.level == logging.WARNING
    assert outlook.line.startswith("float16 on gpu(1): its compute capability could not be read")


def test_the_cuda_driver_is_asked_and_absent_here():
    """No GPU driver on the test machines: the query answers None instead of failing."""
    if mx.context.num_gpus() == 0:
        assert device.gpu_capability() is None


def test_bfloat16_with_native_instructions(cpu):
    cpu(AVX512 | {"avx512_bf16", "amx_bf16"})
    outlook = device.outlook("bfloat16")
    assert outlook.level == logging.INFO
    assert "native bfloat16 instructions (avx512_bf16, amx_bf16)" in outlook.line
    assert "expected to be faster than float32" in outlook.line


def test_bfloat16_on_avx512_alone_may_be_slower(cpu):
    cpu(AVX512)
    outlook = device.outlook("bfloat16", mx.cpu())
    assert outlook.level == logging.WARNING
    assert "can be slower than float32; expect memory savings only" in outlook.line


def test_bfloat16_without_avx512_cannot_run(cpu):
    cpu({"avx2"}, problem="this CPU has no AVX-512 (avx512f missing)")
    outlook = device.outlook("bfloat16")
    assert outlook.level == logging.ERROR
    assert (
        outlook.line == "bfloat16 cannot run on this CPU: this CPU has no AVX-512 (avx512f missing)"
    )


def test_float16_on_a_cpu_is_emulated_and_slower(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 0)
    outlook = device.outlook("float16", emulate=True)
    assert outlook.level == logging.WARNING
    assert "emulated" in outlook.line and "slower than float32" in outlook.line
    refused = device.outlook("float16")
    assert refused.level == logging.ERROR
    assert refused.line.startswith("float16 cannot run on a CPU")
    assert "amp.init('float16', emulate=True)" in refused.line


def test_amp_init_logs_the_line_as_keras_does(gpu, caplog):
    gpu("Tesla V100-SXM2-16GB", (7, 0))
    with caplog.at_level(logging.INFO, logger="gluon_amp"):
        amp.init()  # a GPU is visible: float16
    [line] = [r for r in caplog.records if "Tensor Cores" in r.getMessage()]
    assert line.levelno == logging.INFO and line.name == "gluon_amp"
    assert line.getMessage() == "gluon_amp: " + device.outlook("float16").line


def test_amp_init_warns_that_emulated_float16_is_slow(monkeypatch, caplog):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 0)
    with caplog.at_level(logging.INFO, logger="gluon_amp"):
        amp.init("float16", emulate=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["gluon_amp: " + device.outlook("float16", emulate=True).line]


def test_the_report_carries_the_line_for_its_inputs_context(gpu):
    gpu("A100-SXM4-40GB", (8, 0))
    amp.init("float16")
    net = mx.gluon.nn.Dense(16, in_units=8)
    net.initialize()
    net.hybridize()
    report = amp.report(net, mx.nd.ones((8, 8)))
    assert report.device == device.outlook("float16", mx.cpu()).line  # the inputs live on a CPU
    amp.reset()
    amp.init("float16", emulate=True)
    emulated = amp.report(net, mx.nd.ones((8, 8))).device
    assert emulated == device.outlook("float16", mx.cpu(), emulate=True).line
    assert f"device: {report.device}" in str(report)
