"""Property: on generated training scripts (MXNet contrib and gluon_amp with amp.init() early or
late, PyTorch, Keras with and without a custom loop, with odd spacing, comments, suppressions and
indentation), ``--fix --unsafe-fixes`` always gives code
that parses, fixes nothing more when run again, reports exactly what a new lint finds, and leaves
a file it could not fix byte for byte as it was."""

from __future__ import annotations

from fixcase import fix, lint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amplint.fix.apply import parses

COMMENTS = ["", "  # note", "   #x", "  # noqa: AMP201", "  # amplint: ignore"]


@st.composite
def scripts(draw) -> str:
    framework = draw(st.sampled_from(["contrib", "gluon_amp", "torch", "keras"]))
    unit = draw(st.sampled_from(["    ", "  ", "\t"]))
    dim = draw(st.integers(1, 3000))
    batch = draw(st.integers(1, 300))
    comment = lambda: draw(st.sampled_from(COMMENTS))  # noqa: E731
    space = lambda: draw(st.sampled_from(["", " "]))  # noqa: E731
    lines: list[tuple[int, str]] = []
    add = lambda depth, text: lines.append((depth, text))  # noqa: E731
    constant = draw(st.booleans())
    if constant:
        add(0, f"HIDDEN = {dim}{comment()}")
    value = "HIDDEN" if constant else str(dim)
    in_function = draw(st.booleans())
    base = 1 if in_function else 0
    if framework in ("contrib", "gluon_amp"):
        add(0, "from mxnet import autograd, gluon")
        add(
            0,
            "from mxnet.contrib import amp"
            if framework == "contrib"
            else "import gluon_amp as amp",
        )
        init = "amp.init()" if draw(st.booleans()) else "net.cast('float16')"
        late = draw(st.booleans())  # amp.init() after a hybridized warm-up run (AMP304)
        if not late:
            add(0, init)
        add(0, f"net = gluon.nn.Dense({space()}{value}{space()}){comment()}")
        if late:
            add(0, f"net.hybridize(){comment()}")
            add(0, "net(warmup)")
            add(0, init + comment())
        if draw(st.booleans()):
            add(0, "trainer = gluon.Trainer(net.collect_params(), 'sgd')")
        if draw(st.booleans()):
            add(0, "amp.init_trainer(trainer)")
        add(0, f"loader = gluon.data.DataLoader(data, batch_size={batch})")
        if in_function:
            add(0, "def train(net, loader):")
        add(base, "for x, y in loader:")
        add(base + 1, "with autograd.record():")
        add(base + 2, f"loss = loss_fn(net(x), y){comment()}")
        where = draw(st.sampled_from([base + 1, base + 2]))
        if draw(st.booleans()):
            add(where, "with amp.scale_loss(loss, trainer) as scaled:")
            add(where + 1, "autograd.backward(scaled)")
        else:
            add(where, draw(st.sampled_from(["loss.backward()", "autograd.backward([loss])"])))
        if draw(st.booleans()):
            add(base + 1, "gluon.utils.clip_global_norm(grads, 1.0)")
        add(base + 1, f"trainer.step(x.shape[0]){comment()}")
    elif framework == "torch":
        add(0, "import torch")
        add(0, "from torch import nn")
        half = draw(st.booleans())
        add(0, f"model = nn.Linear({space()}{value}, {dim + 1}){'.half()' if half else ''}")
        add(0, "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)")
        add(0, f"loader = torch.utils.data.DataLoader(data, batch_size={batch})")
        if in_function:
            add(0, "def train(model, loader):")
        add(base, "for x, y in loader:")
        add(base + 1, "with torch.autocast('cuda'):")
        add(base + 2, f"loss = criterion(model(x), y){comment()}")
        if draw(st.booleans()):
            add(base + 1, "scaler.scale(loss).backward()")
        else:
            add(base + 1, f"loss.backward(){comment()}")
        if draw(st.booleans()):
            add(base + 1, "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
        add(base + 1, draw(st.sampled_from(["optimizer.step()", "scaler.step(optimizer)"])))
    else:
        add(0, "from tensorflow import keras")
        add(0, "from tensorflow.keras import layers")
        add(0, "keras.mixed_precision.set_global_policy('mixed_float16')")
        add(0, "model = keras.Sequential([")
        add(1, f"layers.Dense({value}, activation='relu'),{comment()}")
        closing = draw(st.sampled_from([",", ""]))
        add(1, f"layers.Dense({space()}10, activation = 'softmax'{space()}){closing}{comment()}")
        add(0, "])")
        add(0, f"model.fit(x, y, batch_size={batch})")
        if draw(st.booleans()):  # a custom loop (AMP301)
            add(0, "import tensorflow as tf")
            add(0, f"optimizer = keras.optimizers.Adam({space()}){comment()}")
            add(0, "for x, y in dataset:")
            add(1, "with tf.GradientTape() as tape:")
            add(2, f"loss = loss_fn(y, model(x)){comment()}")
            add(1, f"grads = tape.gradient(loss, model.trainable_variables){comment()}")
            add(1, "optimizer.apply_gradients(zip(grads, model.trainable_variables))")
    return "".join(unit * depth + text + "\n" for depth, text in lines)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_fix_gives_parseable_idempotent_code(source):
    assert parses(source), source
    result = fix(source, unsafe=True)
    assert parses(result.fixed), result.fixed
    again = fix(result.fixed, unsafe=True)
    assert again.fixed == result.fixed and again.applied == 0, result.fixed
    assert result.remaining == lint(result.fixed)
    if result.applied == 0:
        assert result.fixed == source
    for finding in result.remaining:  # a finding a fixer looked at says why it stayed
        assert finding not in again.reasons or again.reasons[finding]
