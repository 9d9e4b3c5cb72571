"""AMP101: compute the model's output in float32 before the loss.

Gluon and PyTorch: cast the reported output where it is fed to the loss, softmax or metric
(``.astype('float32')`` for MXNet, ``.float()`` for PyTorch; every element of a list). Keras:
give the final softmax layer ``dtype='float32'`` (or turn its float16 ``dtype`` into float32).
"""

from __future__ import annotations

import libcst as cst

from amplint.findings import Finding
from amplint.fix.api import Edit, FixContext, Unfixable
from amplint.fix.edits import add_keyword
from amplint.frameworks import keras

# Expressions that take a method call without parentheses.
_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)


def fix(finding: Finding, ctx: FixContext) -> list[Edit]:
    node = ctx.node_at(finding, cst.BaseExpression)
    site = ctx.index.site(node)
    if site is not None and (site.qualname or "").endswith("Classifier"):
        raise Unfixable(
            "a Keras-CV/Keras-Hub classifier: return logits (activation=None) and train with a "
            "from_logits loss"
        )
    if site is not None and site.qualname in keras.SOFTMAX_LAYERS:
        dtype = site.arg(None, "dtype")
        if dtype is None:
            return [add_keyword(site.node, "dtype", ctx.string("float32"), "dtype float32")]
        return [Edit(dtype, lambda updated: _float32_like(updated, ctx), "dtype float32")]
    if isinstance(node, (cst.List, cst.Tuple)) and not all(
        isinstance(e, cst.Element) for e in node.elements
    ):
        raise Unfixable("a starred output cannot be cast in place")
    cast = _cast(ctx)

    def change(updated: cst.CSTNode) -> cst.CSTNode:
        if isinstance(updated, (cst.List, cst.Tuple)):
            return updated.with_changes(
                elements=[e.with_changes(value=cast(e.value)) for e in updated.elements]
            )
        assert isinstance(updated, cst.BaseExpression)
        return cast(updated)

    return [Edit(node, change, "cast to float32")]


def _float32_like(dtype: cst.CSTNode, ctx: FixContext) -> cst.BaseExpression:
    """``float32`` written as the float16 dtype was: ``'float16'`` -> ``'float32'``,
    ``tf.float16`` -> ``tf.float32``."""
    if isinstance(dtype, cst.Attribute):
        return dtype.with_changes(attr=cst.Name("float32"))
    if isinstance(dtype, cst.SimpleString):
        quote = dtype.value[len(dtype.prefix)]
        return dtype.with_changes(value=f"{quote}float32{quote}")
    return ctx.string("float32")


def _cast(ctx: FixContext):
    """The cast for this file's framework: a function wrapping an expression."""
    modules = set(ctx.index.imports.values())
    torch_code = any(m == "torch" or m.startswith("torch.") for m in modules)
    mxnet_code = any(m == "mxnet" or m.startswith("mxnet.") for m in modules)
    if torch_code == mxnet_code:
        raise Unfixable("cannot tell whether the output is an MXNet or a PyTorch tensor")
    if torch_code:
        method, args = "float", []
    else:
        method, args = "astype", [cst.Arg(ctx.string("float32"))]

    def cast(expr: cst.BaseExpression) -> cst.BaseExpression:
        if not isinstance(expr, _ATOMS) and not expr.lpar:
            expr = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return cst.Call(func=cst.Attribute(expr, cst.Name(method)), args=args)

    return cast
