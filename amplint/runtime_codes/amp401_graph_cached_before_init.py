"""A hybridized block whose graph was cached before `amp.init()`: it still runs in float32.

Why it matters: a HybridBlock builds and caches its graph on its first call after `hybridize()`.
Autocasting happens while the graph is built, so a graph cached before `amp.init()` keeps every
operator in float32 for the rest of the run: no speed-up, no memory saving, and nothing fails.
MXNet's own AMP has the same trap (mxnet#18902). The source cannot show it when the network is
built and run in another module or behind a helper; `gluon_amp.report` reads the cached graph.
A model loaded with `SymbolBlock.imports` before `amp.init()` is the same case.

Found at run time by `gluon_amp.report` and `gluon_amp.recording`, never by `amplint check`
(amplint's AMP304 finds the same mistake where the source shows it): AMP is on, the cached graph
holds no cast at all, and it holds operators autocast would have cast. Reported once per graph,
on the block that owns it; its GEMMs are listed as "float32 (graph cached before amp.init())"
and get no AMP402 of their own.

Example:

    net.hybridize()
    net(x)                 # graph cached in float32
    amp.init()
    print(amp.report(net, x))   # AMP401 on the net: cached before amp.init()

Fix: call `amp.init()` before the first forward pass, or call `net.hybridize()` again after
`amp.init()` so the next call rebuilds the graph with autocast (for an imported model: load it
again with `SymbolBlock.imports` after `amp.init()`).
"""
