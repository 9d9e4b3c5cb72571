"""What amp.report costs: nothing when unused (side by side with a gluon_amp without it), a few
milliseconds per report, and little while ``amp.recording`` runs.

Run: ``python -m benchmarks.report_cost [--baseline DIR] [--rounds 8] [--steps 3]``

``--baseline DIR`` is another gluon_amp source tree (``git archive main | tar -x -C DIR``): its
training steps are timed in a worker process of their own against this tree's (each worker doing
the same work), both in float16
(emulated on a CPU; a GPU runs it for real), turn about, rotating who goes first. The steps are
those autocast's imperative wrappers are on the path of (a narrow 32-layer MLP called
imperatively: many small operator calls, where a per-call check would show), a hybridized one
(wrappers only build the graph), and 1,000 calls of one wrapped operator alone. A third worker
times the same steps inside ``amp.recording`` and the cost of ``amp.report`` itself (a graph
read; an imperative call).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from .amp_step import _machine, _rotated, _spawn

MODES = ("imperative", "hybridized")
LAYERS, WIDTH, BATCH = 32, 64, 32
CALLS = 1000


def _setup(mode: str):
    """A narrow deep MLP in float16 and one training step of it."""
    import mxnet as mx
    from mxnet import autograd, gluon

    import gluon_amp as amp

    mx.random.seed(0)
    net = gluon.nn.HybridSequential()
    for _ in range(LAYERS):
        net.add(gluon.nn.Dense(WIDTH, activation="relu", in_units=WIDTH))
    net.add(gluon.nn.Dense(16, in_units=WIDTH))
    net.initialize(mx.init.Xavier())
    if mode == "hybridized":
        net.hybridize()
    x = mx.nd.random.uniform(shape=(BATCH, WIDTH))
    y = mx.nd.random.randint(0, 16, shape=(BATCH,)).astype("float32")
    trainer = amp.init_trainer(gluon.Trainer(net.collect_params(), "sgd"))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def step() -> None:
        with autograd.record():
            loss = loss_fn(net(x), y)
        with amp.scale_loss(loss, trainer) as scaled:
            scaled.backward()
        trainer.step(BATCH)
        mx.nd.waitall()

    return net, trainer, x, step


def _worker(tree: str | None, reporting: bool, conn) -> None:
    """Time steps of each mode, or (``reporting``) steps inside ``amp.recording`` and
    ``amp.report`` itself."""
    if tree is not None:
        sys.path.insert(0, tree)
    import gluon_amp as amp

    amp.init("float16", emulate=True)
    setups = {mode: _setup(mode) for mode in MODES}
    for _, _, _, step in setups.values():
        step()  # warm-up: graph building
        step()
    import mxnet as mx

    tiny = mx.nd.ones((2, 2))
    conn.send("ready")
    while True:
        steps = conn.recv()
        if steps is None:
            return
        times: dict[str, list[float]] = {}
        for _ in range(0 if reporting else steps):  # a wrapped operator (exp: float32-listed)
            start = time.perf_counter()
            for _ in range(CALLS):
                mx.nd.exp(tiny)
            mx.nd.waitall()
            elapsed = time.perf_counter() - start
            times.setdefault(f"{CALLS} wrapped calls of exp", []).append(elapsed)
        for mode, (net, trainer, x, step) in setups.items():
            for _ in range(0 if reporting else steps):
                start = time.perf_counter()
                step()
                times.setdefault(mode, []).append(time.perf_counter() - start)
            if reporting:
                with amp.recording(net, trainer):
                    for _ in range(steps):
                        start = time.perf_counter()
                        step()
                        times.setdefault(f"{mode}, recording", []).append(
                            time.perf_counter() - start
                        )
                start = time.perf_counter()
                amp.report(net, x)
                times.setdefault(f"{mode}, amp.report", []).append(time.perf_counter() - start)
        conn.send(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="another gluon_amp source tree, timed side by side")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode and round")
    args = parser.parse_args()
    print(f"machine: {_machine()}")
    trees = {"this tree": (None, False), "this tree, reporting": (None, True)}
    if args.baseline:
        trees["baseline"] = (args.baseline, False)
    workers = {name: _spawn(_worker, *tree) for name, tree in trees.items()}
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for _, conn in workers.values():
            assert conn.recv() == "ready"
        for round_index in range(args.rounds):
            for name, (_, conn) in _rotated(list(workers.items()), round_index):
                time.sleep(0.5)
                conn.send(args.steps)
                for label, measured in conn.recv().items():
                    times.setdefault((name, label), []).extend(measured)
    finally:
        for process, conn in workers.values():
            conn.send(None)
            process.join(timeout=30)
    print(
        f"\nMLP {LAYERS}x{WIDTH}, batch {BATCH}, float16 (emulated on CPU), ms per step "
        f"({args.rounds} rounds x {args.steps} steps, turn about; the calls: ms per {CALLS})"
    )
    print("| tree | what | median | min |")
    print("|---|---|---:|---:|")
    for (name, label), measured in times.items():
        median, fastest = statistics.median(measured) * 1000, min(measured) * 1000
        print(f"| {name} | {label} | {median:.2f} | {fastest:.2f} |")


if __name__ == "__main__":
    main()
