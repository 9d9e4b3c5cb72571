"""amplint: a static linter for mixed-precision hazards in Gluon, Keras and PyTorch code."""

__version__ = "0.1.0"
