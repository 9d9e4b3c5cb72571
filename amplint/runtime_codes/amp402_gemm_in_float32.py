"""A matrix multiply or convolution left in float32 where a low-precision kernel exists for it.

Why it matters: GEMM-family operators (FullyConnected, Convolution, Deconvolution, dot,
batch_dot, RNN) do nearly all of a network's arithmetic; AMP pays off only when they run in
float16 (GPU Tensor Cores) or bfloat16 (CPUs with avx512_bf16 or AMX). One left in float32 — an
operator a user moved to the float32 list or left out of a custom target list, a `dot` whose
other input is float32, a custom block that casts its input back up — costs its full float32
time and the casts around it.

Found at run time by `gluon_amp.report` and `gluon_amp.recording`, never by `amplint check`: the
report's table gives each GEMM's precision and why ("your fp32_ops", "not in your
target_precision_ops", "widest type of its inputs: one is float32", ...), one finding per layer.
Where no low-precision kernel exists for that operator and context the table says "float32 (no
bfloat16 kernel)" and there is no finding: nothing can be done about it. MXNet 1.9's bfloat16
kernels are oneDNN's FullyConnected and Convolution (its bfloat16 list); RNN, Deconvolution,
`dot` and `batch_dot` have none. On float16 every GEMM has one (on a GPU; emulated float16 on a
CPU stands for the GPU it previews).

Example:

    amp.init(fp32_ops=["FullyConnected"])
    print(amp.report(net, x))   # AMP402 on every Dense layer: FullyConnected ran in float32

Fix: leave the operator on MXNet's target list (drop it from `fp32_ops`), or cast the block's
input to the low precision instead of float32.
"""
