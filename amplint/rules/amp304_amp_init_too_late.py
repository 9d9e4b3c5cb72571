"""`mxnet.contrib.amp.init()` called after the network was hybridized and run.

Why it matters: contrib's AMP works by patching MXNet's operator functions. A hybridized block
builds and caches its graph on its first call; if that happened before `amp.init()`, the cached
float32 graph is used from then on and nothing runs in reduced precision (no error, no warning,
just no speed-up). Calling `init` after building the network, after `hybridize()` alone, or
after an imperative (non-hybridized) run is fine.

Reported when `net.hybridize()` and then a call of `net` come before `amp.init()` as the code
runs: in the same function (or at module level), or through functions of the same file called
before it (a `setup()` that hybridizes and runs the network, then a `train()` that calls
`amp.init()`).

Example:

    net.hybridize()
    net(warmup_batch)
    amp.init()                 # AMP304: the float32 graph is already cached

Fix: call `amp.init()` at the start of the script, before the first forward pass of a
hybridized network (`gluon_amp.init` warns about this case and says what to do).
"""

from __future__ import annotations

from collections.abc import Iterator

from amplint.frameworks import mxnet
from amplint.index import CallSite, dotted
from amplint.rules.api import Issue, RuleContext


def check(ctx: RuleContext) -> Iterator[Issue]:
    """contrib ``amp.init()`` after a hybridized network has run."""
    index = ctx.index
    for init in index.calls:
        if not mxnet.amp_function(init.qualname, "init", mxnet.CONTRIB_AMP):
            continue
        for runner in index.runners(init):
            position = index.position(runner, init)
            if position is None:
                continue
            run = _hybridized_and_run([site for _, site in index.timeline(runner)[:position]])
            if run is not None:
                net, site = run
                yield Issue(
                    init.node,
                    f"amp.init() after {net} was hybridized and run: its float32 graph is "
                    "cached and stays float32; call amp.init() before the first forward pass",
                    (site.node, f"{net} first run"),
                )
                break


def _hybridized_and_run(calls: list[CallSite]) -> tuple[str, CallSite] | None:
    """The first call of a network after its ``hybridize()`` (``net(x)``, ``net.forward(x)``)."""
    hybridized: set[str] = set()
    for site in calls:
        if site.method == "hybridize" and site.receiver is not None:
            net = dotted(site.receiver)
            if net is not None:
                hybridized.add(net)
        elif site.name in hybridized:
            return site.name, site
        elif site.method == "forward" and site.receiver is not None:
            net = dotted(site.receiver)
            if net in hybridized:
                return net, site
    return None


VALID = [
    """
from mxnet.contrib import amp
amp.init()
net = build()
net.hybridize()
net(x)
""",
    # After building and hybridize() alone: the graph is not cached yet.
    """
from mxnet.contrib import amp
net = build()
net.initialize()
net.hybridize()
amp.init()
net(x)
""",
    # After an imperative run.
    """
from mxnet.contrib import amp
net = build()
net(x)
amp.init()
""",
    # Across functions: setup() only hybridizes; the network first runs after amp.init().
    """
from mxnet.contrib import amp
def setup():
    net = build()
    net.initialize()
    net.hybridize()
    return net
def train(net):
    amp.init()
    for x in data:
        net(x)
def main():
    net = setup()
    train(net)
""",
    # gluon_amp handles a late init itself.
    """
import gluon_amp as amp
net.hybridize()
net(x)
amp.init()
""",
]

INVALID = [
    """
from mxnet.contrib import amp
def main():
    net = build()
    net.initialize()
    net.hybridize(static_alloc=True)
    net(warmup)
    amp.init()  # AMP304
""",
    # setup() hybridizes and runs the network (a warm-up), then train() calls amp.init().
    """
from mxnet.contrib import amp
class Runner:
    def warm_up(self, net):
        net(self.batch)
    def setup(self):
        net = build()
        net.hybridize()
        self.warm_up(net)
        return net
def train(net):
    amp.init()  # AMP304
    amp.init_trainer(trainer)
def main():
    runner = Runner()
    net = runner.setup()
    train(net)
""",
]
