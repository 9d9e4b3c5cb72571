"""The index's view of call order across helper functions (used by AMP304/AMP305)."""

from __future__ import annotations

import libcst as cst

from amplint.index import _TIMELINE_LIMIT, FileIndex

SOURCE = """\
import torch
class Runner:
    def warm(self):
        self.net(x)
    def setup(self):
        self.net.hybridize()
        self.warm()
def helper():
    torch.relu(x)
    helper()
def main():
    runner = Runner()
    runner.setup()
    helper()
    done()
"""


def build(source: str) -> FileIndex:
    return FileIndex.build(cst.parse_module(source))


def test_timeline_expands_local_functions_and_methods_in_order():
    index = build(SOURCE)
    main = index.functions["main"].node
    timeline = [(outer.name, site.name) for outer, site in index.timeline(main)]
    assert timeline == [
        ("Runner", "Runner"),
        ("runner.setup", "runner.setup"),
        ("runner.setup", "self.net.hybridize"),
        ("runner.setup", "self.warm"),
        ("runner.setup", "self.net"),
        ("helper", "helper"),
        ("helper", "torch.relu"),
        ("helper", "helper"),  # a recursive call is not expanded again
        ("done", "done"),
    ]


def test_runners_are_the_functions_that_reach_a_call():
    index = build(SOURCE)
    run = next(site for site in index.calls if site.name == "self.net")
    names = [f.name.value for f in index.runners(run)]
    assert names == ["warm", "setup", "main"]


def test_timeline_of_helpers_calling_each_other_is_bounded():
    names = [f"f{i}" for i in range(30)]
    source = "".join(
        f"def {name}():\n" + "".join(f"    {other}()\n" for other in names if other != name)
        for name in names
    )
    index = build(source)
    assert len(index.timeline(index.functions["f0"].node)) == _TIMELINE_LIMIT
