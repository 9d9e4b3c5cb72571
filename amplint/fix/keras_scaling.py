"""AMP301 in a Keras custom loop: wrap the optimizer in a LossScaleOptimizer and scale the loss.

TF-Keras 2 (an optimizer of ``tf.keras`` / ``tensorflow.keras`` / ``tf_keras``, or a legacy
one)::

    optimizer = keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam())
    with tf.GradientTape() as tape:
        loss = ...
        scaled_loss = optimizer.get_scaled_loss(loss)
    grads = optimizer.get_unscaled_gradients(tape.gradient(scaled_loss, variables))

Keras 3 (an optimizer of top-level ``keras``), whose ``apply_gradients`` unscales itself::

    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    ...
        scaled_loss = optimizer.scale_loss(loss)
    grads = tape.gradient(scaled_loss, variables)

Only when one optimizer, created once in this file, applies the gradients in the same function,
and the tape's ``with`` block is found.
"""

from __future__ import annotations

import libcst as cst

from amplint.fix.api import Edit, FixContext, Unfixable, expression, simple_statement
from amplint.fix.edits import append_to_body
from amplint.index import CallSite, dotted

_APPLY = ("apply_gradients", "apply")


def fix(ctx: FixContext, site: CallSite) -> list[Edit]:
    tape = dotted(site.receiver) if site.receiver is not None else None
    loss = site.arg(0, "target")
    if tape is None or not isinstance(loss, cst.Name):
        raise Unfixable("Keras: the tape or the loss is not a plain name: scale the loss by hand")
    block = _tape_block(ctx, site, tape)
    if any(node is block for node in ctx.ancestors(site.node)):
        raise Unfixable("Keras: tape.gradient is called inside the tape's block")
    optimizer, creation = _optimizer(ctx, site)
    module, keras3 = _keras(creation)
    scaled = ctx.free_name("scaled_loss")
    method = "scale_loss" if keras3 else "get_scaled_loss"
    scale = simple_statement(f"{scaled} = {optimizer}.{method}({loss.value})\n")
    wrapper = f"{module}.{'optimizers' if keras3 else 'mixed_precision'}.LossScaleOptimizer"

    def wrap_optimizer(updated: cst.CSTNode) -> cst.Call:
        assert isinstance(updated, cst.Call)
        return cst.Call(expression(wrapper), [cst.Arg(updated)])

    def gradient(updated: cst.CSTNode) -> cst.Call:
        assert isinstance(updated, cst.Call)
        first = updated.args[0]
        call = updated.with_changes(
            args=[first.with_changes(value=cst.Name(scaled)), *updated.args[1:]]
        )
        if keras3:
            return call
        return cst.Call(expression(f"{optimizer}.get_unscaled_gradients"), [cst.Arg(call)])

    return [
        Edit(creation.node, wrap_optimizer, "LossScaleOptimizer"),
        append_to_body(block, scale, f"scale {loss.value}"),
        Edit(site.node, gradient, "unscaled gradients"),
    ]


def _tape_block(ctx: FixContext, site: CallSite, tape: str) -> cst.With:
    """The last ``with tf.GradientTape() as <tape>:`` before the gradient call."""
    blocks = []
    for other in ctx.index.calls:
        statement = other.statement
        if (
            (other.qualname or "").endswith("GradientTape")
            and other.function is site.function
            and other.order < site.order
            and isinstance(statement, cst.With)
        ):
            for item in statement.items:
                if item.item is other.node and item.asname is not None:
                    if dotted(item.asname.name) == tape:
                        blocks.append(statement)
    if not blocks:
        raise Unfixable(f"Keras: cannot find the GradientTape block of {tape}")
    return blocks[-1]


def _optimizer(ctx: FixContext, site: CallSite) -> tuple[str, CallSite]:
    """The optimizer applying the gradients after ``site`` and the call creating it."""
    applied = {
        dotted(other.receiver)
        for other in ctx.index.calls
        if other.method in _APPLY
        and other.receiver is not None
        and other.function is site.function
        and other.order > site.order
    }
    if len(applied) != 1 or None in applied:
        raise Unfixable("Keras: cannot tell which optimizer applies these gradients")
    name = str(applied.pop())
    values = ctx.index.values_of(name, site.scope)
    creation = ctx.index.site(values[0]) if len(values) == 1 else None
    if creation is None or ".optimizers." not in (creation.qualname or ""):
        raise Unfixable(f"Keras: {name} is not created once in this file by keras.optimizers")
    return name, creation


def _keras(creation: CallSite) -> tuple[str, bool]:
    """How the file spells the Keras module of the optimizer, and whether it is Keras 3."""
    qualname, written = creation.qualname or "", creation.name or ""
    if ".optimizers." not in written:
        raise Unfixable("Keras: the optimizer class is imported by name: wrap it by hand")
    module = written.split(".optimizers.")[0]
    keras3 = qualname.startswith("keras.") and ".legacy." not in qualname
    if not keras3 and not qualname.startswith(("tensorflow.keras.", "tf_keras.", "keras.")):
        raise Unfixable("Keras: cannot tell whether this is Keras 2 or Keras 3")
    return module, keras3
