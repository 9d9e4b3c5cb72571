"""The hazard examples (examples/hazards/) fixed through the real CLI: every finding with a fix is
gone, exactly the findings no safe fix exists for stay and say why, the fixed scripts parse, a
second run changes nothing, and the corrected twins are left byte for byte alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from amplint.fix.apply import parses

HAZARDS = Path(__file__).resolve().parents[3] / "examples" / "hazards"
SELECT = ("--select", "ALL,AMP306", "--no-cache")
NO_AMP = (
    "no amp.init() and no gluon_amp: import gluon_amp as amp, then use amp.init_trainer(trainer) "
    "and amp.scale_loss(loss, trainer) (or a static loss scale)"
)
# (file, code, why it is not fixed): float16 without any amp to scale with, a finding of one
# configuration, and .half() weights.
NOT_FIXABLE = [
    ("gluon_fp16_cast.py", "AMP301", NO_AMP),
    (  # float16 only with --dtype float16: loss scaling there must be added under that option
        "gluon_master_weights.py",
        "AMP306",
        "it holds only with --dtype float16, and this fix would change the other configurations "
        "too: apply it under the same condition by hand",
    ),
    (
        "torch_half.py",
        "AMP301",
        "float16 weights (.half()): keep the model float32 and train under torch.autocast with a "
        "GradScaler (GradScaler cannot unscale float16 parameters)",
    ),
]


def _findings(stdout: str) -> list[tuple[str, str]]:
    """(code, line) of each finding line of a text report."""
    return [
        (line.split(": ")[1].split()[0], line) for line in stdout.splitlines() if ": AMP" in line
    ]


def test_hazard_examples_fix_clean(tmp_path, amplint):
    scripts = sorted(HAZARDS.glob("*.py"))
    assert any(not p.stem.endswith("_fixed") for p in scripts), "no hazard examples"
    for script in scripts:
        shutil.copy(script, tmp_path / script.name)
    before = json.loads(amplint("check", ".", *SELECT, "--format", "json", cwd=tmp_path).stdout)
    assert before and all(not f["path"].endswith("_fixed.py") for f in before)

    fixed = amplint("check", ".", *SELECT, "--fix", "--unsafe-fixes", cwd=tmp_path)
    remaining = _findings(fixed.stdout)
    left = [
        (line.split(":")[0], code, line.split(" [not fixed: ")[1].removesuffix("]"))
        for code, line in remaining
    ]
    assert left == NOT_FIXABLE
    count = int(fixed.stdout.splitlines()[-1].split()[0])
    assert count > 0 and count + len(remaining) <= len(before)
    for script in scripts:
        text = (tmp_path / script.name).read_text()
        assert parses(text), script.name
        if script.stem.endswith("_fixed"):
            assert text == script.read_text(), script.name

    again = amplint("check", ".", *SELECT, "--fix", "--unsafe-fixes", cwd=tmp_path)
    assert again.stdout.splitlines()[-1] == f"0 fixed, {len(remaining)} remaining."
    assert _findings(again.stdout) == remaining
    assert {code for code, _ in remaining} < {f["code"] for f in before}
