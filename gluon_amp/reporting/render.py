"""A report as a text table, as JSON (keys sorted, ``schema_version``) and as amplint's text
findings (``layer: CODE message``: the layer path where amplint puts ``path:line:col``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .graph import Tensor

if TYPE_CHECKING:
    from .model import Report

__all__ = ["SCHEMA_VERSION", "findings_text", "human_bytes", "summary", "text", "to_json"]

#: Bumped whenever a key of ``to_json`` changes meaning or goes away.
SCHEMA_VERSION = 1
_COLUMNS = ("layer", "operator", "input", "output", "ran in", "why")


def _tensor(tensor: Tensor | None) -> str:
    if tensor is None:
        return ""
    shape = str(tensor.shape) if tensor.shape is not None else "?"
    return f"{shape} {tensor.dtype or '?'}"


def _layer(report: Report, layer: str) -> str:
    return layer or report.net


def _scaled(value: int, unit: str) -> str:
    for prefix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {prefix}{unit}"
    return f"{value} {unit}"


def human_bytes(count: int) -> str:
    """``1.20 MB``, ``310.00 kB``, ``12 B``."""
    return _scaled(count, "B")


def _flops(flops: int) -> str:
    return _scaled(flops, "FLOP")


def _inputs(report: Report) -> str:
    return ", ".join(f"{name} {_tensor(t)}" for name, t in report.inputs.items())


def findings_text(report: Report) -> str:
    """One ``layer: CODE message`` line per finding."""
    return "".join(f"{_layer(report, f.layer)}: {f.code} {f.message}\n" for f in report.findings)


def _table(report: Report) -> list[str]:
    cells = [_COLUMNS] + [
        (
            _layer(report, row.layer),
            row.op,
            _tensor(row.input),
            _tensor(row.output),
            row.precision,
            row.why + (f" ({row.code})" if row.code else ""),
        )
        for row in report.rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1]
        for line in cells
    ]


def _casts(report: Report) -> str:
    if not report.casts:
        return "casts per step: none"
    kinds: dict[str, int] = {}
    for cast in report.casts:
        kinds[cast.of] = kinds.get(cast.of, 0) + 1
    parts = ", ".join(f"{count} {kind}{'s' if count > 1 else ''}" for kind, count in kinds.items())
    share = report.cast_bytes / report.forward_bytes if report.forward_bytes else 0.0
    return (
        f"casts per step: {len(report.casts)} ({parts}), {human_bytes(report.cast_bytes)}, "
        f"{share:.0%} of the forward pass's bytes (backward casts the gradients back alike)"
    )


def _steps(report: Report) -> list[str]:
    if not report.steps:
        return []
    skipped = [i for i, step in enumerate(report.steps, 1) if step.skipped]
    which = f" (steps {', '.join(map(str, skipped))})" if skipped else ""
    scales = [report.steps[0].scale] + [step.next_scale for step in report.steps]
    return [
        f"steps: {len(report.steps)} taken, {len(skipped)} skipped{which}; loss scale "
        f"{scales[0]:g} at the start, {scales[-1]:g} at the end (lowest {min(scales):g}, "
        f"highest {max(scales):g})"
    ]


def _header(report: Report) -> list[str]:
    target = report.target_dtype or "float32 (AMP off)"
    return [
        f"amp.report: {report.net}, {target}, from the {report.source}; shapes from inputs "
        f"{_inputs(report)}",
        f"device: {report.device}",
    ]


def _summary(report: Report) -> list[str]:
    target = report.target_dtype or "float32 (AMP off)"
    low = sum(1 for row in report.rows if row.low)
    lines = [
        f"GEMMs in {target}: {low} of {len(report.rows)}, {report.low_precision_share:.0%} of "
        f"{_flops(report.gemm_flops)} per forward pass",
        _casts(report),
        *_steps(report),
    ]
    if report.findings:
        lines += ["", f"findings ({len(report.findings)}):", findings_text(report).rstrip("\n")]
    else:
        lines += ["", "findings: none"]
    return lines


def text(report: Report) -> str:
    """The report as a readable table with its summary and findings."""
    return "\n".join([*_header(report), "", *_table(report), "", *_summary(report)]) + "\n"


def summary(report: Report) -> str:
    """The report without its table: device, GEMMs and casts, steps, findings."""
    return "\n".join([*_header(report), *_summary(report)]) + "\n"


def _tensor_json(tensor: Tensor | None) -> dict[str, Any] | None:
    if tensor is None:
        return None
    return {"dtype": tensor.dtype, "shape": list(tensor.shape) if tensor.shape else tensor.shape}


def to_json(report: Report) -> str:
    """The report as JSON with sorted keys; ``schema_version`` says which layout it follows."""
    data = {
        "schema_version": SCHEMA_VERSION,
        "net": report.net,
        "source": report.source,
        "target_dtype": report.target_dtype,
        "device": report.device,
        "alignment": report.alignment,
        "min_dimension": report.min_dimension,
        "inputs": {name: _tensor_json(tensor) for name, tensor in report.inputs.items()},
        "gemms": [
            {
                "layer": row.layer,
                "op": row.op,
                "node": row.node,
                "input": _tensor_json(row.input),
                "weight": _tensor_json(row.weight),
                "output": _tensor_json(row.output),
                "precision": row.precision,
                "why": row.why,
                "code": row.code,
                "fix": row.fix,
                "gemm": None
                if row.gemm is None
                else {
                    "kind": row.gemm.kind,
                    "m": row.gemm.m,
                    "n": row.gemm.n,
                    "k": row.gemm.k,
                    "flops": row.gemm.flops,
                },
            }
            for row in report.rows
        ],
        "casts": [
            {
                "layer": cast.layer,
                "from": _tensor_json(cast.source),
                "to": cast.dtype,
                "of": cast.of,
                "around": cast.around,
                "bytes": cast.nbytes,
            }
            for cast in report.casts
        ],
        "summary": {
            "gemms": len(report.rows),
            "gemms_low_precision": sum(1 for row in report.rows if row.low),
            "gemm_flops": report.gemm_flops,
            "low_precision_flops_share": round(report.low_precision_share, 4),
            "casts_per_step": len(report.casts),
            "cast_bytes_per_step": report.cast_bytes,
            "forward_bytes": report.forward_bytes,
        },
        "steps": [
            {"scale": step.scale, "skipped": step.skipped, "next_scale": step.next_scale}
            for step in report.steps
        ],
        "findings": [
            {
                "code": f.code,
                "name": f.name,
                "layer": f.layer,
                "message": f.message,
                "size": f.size,
                "padded": f.padded,
            }
            for f in report.findings
        ],
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
