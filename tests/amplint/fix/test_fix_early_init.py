"""AMP304: ``amp.init()`` moves before the network is built, hybridized or run; comments and
odd formatting are kept byte for byte; it is refused when the network runs elsewhere or the call
uses a name set in between."""

from __future__ import annotations

from fixcase import assert_fixed, fix


def test_init_moves_before_the_network_is_built_with_its_comments():
    before = (
        "from mxnet.contrib import amp\n"
        "def main():\n"
        "    # build the network\n"
        "    net = build( )   # odd spacing\n"
        "    net.initialize()\n"
        "    net.hybridize(static_alloc=True)\n"
        "    net(warmup)\n"
        "\n"
        "    # turn on float16\n"
        "    amp.init( target_dtype = 'float16' )  # late\n"
        "    train(net)\n"
    )
    after = (
        "from mxnet.contrib import amp\n"
        "def main():\n"
        "    # build the network\n"
        "    # turn on float16\n"
        "    amp.init( target_dtype = 'float16' )  # late\n"
        "    net = build( )   # odd spacing\n"
        "    net.initialize()\n"
        "    net.hybridize(static_alloc=True)\n"
        "    net(warmup)\n"
        "    train(net)\n"
    )
    assert_fixed(before, after, "AMP304")


def test_module_level_init_goes_after_the_imports_before_a_parameter_network():
    before = (
        "import mxnet as mx\n"
        "from mxnet.contrib import amp\n"
        "\n"
        "ctx = mx.cpu()\n"
        "net.hybridize()\n"
        "net(x)\n"
        "amp.init()\n"
    )
    after = (
        "import mxnet as mx\n"
        "from mxnet.contrib import amp\n"
        "\n"
        "ctx = mx.cpu()\n"
        "amp.init()\n"
        "net.hybridize()\n"
        "net(x)\n"
    )
    assert_fixed(before, after, "AMP304")


def test_a_helper_that_hybridizes_and_runs_counts_as_the_first_statement():
    before = (
        "from mxnet.contrib import amp\n"
        "def warm_up(net):\n"
        "    net.hybridize()\n"
        "    net(x)\n"
        "def main(net):\n"
        "    log('start')\n"
        "    warm_up(net)\n"
        "    amp.init()\n"
    )
    after = before.replace(
        "    warm_up(net)\n    amp.init()\n", "    amp.init()\n    warm_up(net)\n"
    )
    assert_fixed(before, after, "AMP304")


def test_not_moved_past_the_assignment_of_a_name_it_uses():
    before = (
        "from mxnet.contrib import amp\n"
        "net = build()\n"
        "dtype = 'float16'\n"
        "net.hybridize()\n"
        "net(x)\n"
        "amp.init(target_dtype=dtype)\n"
    )
    result = fix(before, "AMP304")
    assert result.fixed == before
    assert result.reasons[result.remaining[0]].startswith("dtype is set after the network")


def test_network_run_in_another_function_is_left_with_a_reason():
    before = (
        "from mxnet.contrib import amp\n"
        "def setup():\n"
        "    net = build()\n"
        "    net.hybridize()\n"
        "    net(x)\n"
        "    return net\n"
        "def train(net):\n"
        "    amp.init()\n"
        "def main():\n"
        "    net = setup()\n"
        "    train(net)\n"
    )
    result = fix(before, "AMP304")
    assert result.fixed == before
    assert "another function" in result.reasons[result.remaining[0]]


def test_not_moved_above_the_import_of_amp_and_attributes_are_not_names():
    late_import = (
        "net = build()\nnet.hybridize()\nnet(x)\nfrom mxnet.contrib import amp\namp.init()\n"
    )
    result = fix(late_import, "AMP304")
    assert result.fixed == late_import
    assert result.reasons[result.remaining[0]].startswith("amp is set after the network")
    # args.dtype reads args (set before the network), not a name ``dtype`` set in between
    before = (
        "from mxnet.contrib import amp\n"
        "args = parse()\n"
        "net = build()\n"
        "dtype = net.dtype\n"
        "net.hybridize()\n"
        "net(x)\n"
        "amp.init(target_dtype=args.dtype)\n"
    )
    after = before.replace("net = build()\n", "amp.init(target_dtype=args.dtype)\nnet = build()\n")
    assert_fixed(before, after.removesuffix("amp.init(target_dtype=args.dtype)\n"), "AMP304")


def test_init_in_a_nested_block_is_left_with_a_reason():
    before = "from mxnet.contrib import amp\nnet.hybridize()\nnet(x)\nif use_amp:\n    amp.init()\n"
    result = fix(before, "AMP304")
    assert result.fixed == before
    assert "nested block" in result.reasons[result.remaining[0]]
