"""`mxnet.contrib.amp.init()` called after the network was hybridized and run.

Why it matters: contrib's AMP works by patching MXNet's operator functions. A hybridized block
builds and caches its graph on its first call; if that happened before `amp.init()`, the cached
float32 graph is used from then on and nothing runs in reduced precision (no error, no warning,
just no speed-up). Calling `init` after building the network, after `hybridize()` alone, or
after an imperative (non-hybridized) run is fine.

Reported when, in the same function (or at module level), `net.hybridize()` and then a call of
`net` come before `amp.init()`.

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
from amplint.index import dotted
from amplint.rules.api import Issue, RuleContext

CODE = "AMP304"
NAME = "amp-init-too-late"


def check(ctx: RuleContext) -> Iterator[Issue]:
    calls = ctx.index.calls
    for init in calls:
        if not mxnet.amp_function(init.qualname, "init", mxnet.CONTRIB_AMP):
            continue
        earlier = [c for c in calls if c.scope is init.scope and c.order < init.order]
        for hybridize in earlier:
            if hybridize.method != "hybridize" or hybridize.receiver is None:
                continue
            net = dotted(hybridize.receiver)
            runs = [
                c
                for c in earlier
                if c.order > hybridize.order
                and (c.name == net or (c.method == "forward" and dotted(c.receiver) == net))
            ]
            if net is not None and runs:
                yield Issue(
                    init.node,
                    f"amp.init() after {net} was hybridized and run: its float32 graph is "
                    "cached and stays float32; call amp.init() before the first forward pass",
                    (runs[0].node, f"{net} first run"),
                )
                break


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
]
