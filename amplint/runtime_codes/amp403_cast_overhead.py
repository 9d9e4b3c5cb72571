"""Casts inserted by autocast that move a sizeable share of a step's bytes.

Why it matters: every `amp_cast` reads its input and writes a copy in the other precision. A
float32-listed operator between two GEMMs, or a custom block that returns float32, makes the
activations flow float16 -> float32 -> float16 on every step; when those copies are a large part
of the memory traffic, mixed precision can be slower than float32.

Found at run time by `gluon_amp.report` and `gluon_amp.recording`, never by `amplint check`. The
report counts every dtype-changing cast of a forward pass (backward casts the gradients back
alike) with the bytes it reads and writes: of the network's input, of parameters (float32 master
weights cast every step: unavoidable, never a finding), of constants, and of activations. An
activation cast belongs to the operator on its float32 side where autocast handles that operator
(else to the one on its other side), so both casts around one float32-listed operator land in
its layer; a layer whose activation casts move at least 5% of the bytes all operators of the
forward pass read and write gets one finding.

Example:

    class Head(gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            return self.dense(F.exp(x))   # `exp` is float32-listed: two casts on every step

Fix: keep float32-listed operators out of the middle of low-precision chains (move them to the
end of the network, or use an operator that runs in low precision), and do not cast inside
custom blocks.
"""
