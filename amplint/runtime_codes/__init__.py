"""Codes found only at run time, by ``gluon_amp.report``: one module per code, its docstring the
documentation ``amplint explain`` prints. ``amplint check`` never reports them."""
