"""``amp.report`` and ``amp.recording``: what really ran in low precision, and which shapes miss
the hardware, with amplint's codes.

graph.py reads a graph (emulation.py: its emulated float16 as a GPU runs it); imperative.py
watches an imperative call through autocast's observer; gemm.py measures GEMMs; precision.py says
why each ran in its precision; findings.py turns them into coded findings; analyze.py puts a
graph's rows, casts and findings together; collect.py is ``amp.report``, recording.py
``amp.recording``; model.py holds a report; render.py prints it.
"""

from .collect import report
from .model import Cast, Finding, Report, Row, Step
from .recording import recording

__all__ = ["Cast", "Finding", "Report", "Row", "Step", "recording", "report"]
