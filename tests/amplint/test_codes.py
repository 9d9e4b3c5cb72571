"""The shared catalogue of codes: source rules and the run-time codes gluon_amp.report uses."""

import json
import re
import subprocess
import sys

from click.testing import CliRunner

from amplint.cli import main
from amplint.codes import CATALOG, RUNTIME, SOURCE, resolve
from amplint.report import sarif
from amplint.rules import RULES

RUNTIME_CODES = sorted(code for code, entry in CATALOG.items() if entry.stage == RUNTIME)


def test_the_catalogue_is_pure_data_without_libcst_or_mxnet():
    """gluon_amp reads it, and amplint reads it on runs that parse nothing."""
    probe = (
        "import sys, amplint.codes as c\n"
        "docs = [e.doc for e in c.CATALOG.values() if e.stage == c.RUNTIME]\n"
        "print(sorted(m for m in ('libcst', 'mxnet', 'numpy', 'click') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_source_rules_are_the_rules_amplint_checks_and_runtime_codes_are_amp4xx():
    assert set(RULES) == {code for code, entry in CATALOG.items() if entry.stage == SOURCE}
    assert RUNTIME_CODES and all(code.startswith("AMP4") for code in RUNTIME_CODES)
    for code in RUNTIME_CODES:
        entry = CATALOG[code]
        assert re.fullmatch(r"[a-z0-9-]+", entry.name)
        for heading in ("Why it matters", "Example", "Fix", "never by `amplint check`"):
            assert heading in entry.doc, (code, heading)


def test_runtime_codes_are_listed_explained_and_selectable(tmp_path):
    runner = CliRunner()
    listing = runner.invoke(main, ["rules"]).output
    listed = json.loads(runner.invoke(main, ["rules", "--format", "json"]).output)
    assert [row["code"] for row in listed] == list(CATALOG)
    for code in RUNTIME_CODES:
        name = CATALOG[code].name
        assert re.search(rf"^{code}\s+{name}\s+run\s", listing, re.MULTILINE)
        assert {"code": code, "stage": "run time"}.items() <= next(
            row for row in listed if row["code"] == code
        ).items()
        result = runner.invoke(main, ["explain", name])
        assert result.exit_code == 0
        assert result.output.startswith(f"{code} {name} (found at run time by gluon_amp.report")
    assert resolve(["AMP4"]) == set(RUNTIME_CODES)
    assert resolve(["graph-cached-before-init"]) == {"AMP401"}
    (tmp_path / "pyproject.toml").write_text('[tool.amplint]\nignore = ["AMP401"]\n')
    (tmp_path / "train.py").write_text("from mxnet.gluon import nn\nnet = nn.Dense(10)\n")
    result = runner.invoke(main, ["check", str(tmp_path), "--select", "AMP4,AMP2", "--no-cache"])
    assert result.exit_code == 0, result.output


def test_sarif_describes_exactly_the_rules_amplint_check_can_report():
    log = json.loads(sarif.render([], RULES.items(), successful=True))
    described = [rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]]
    assert sorted(described) == sorted(c for c, e in CATALOG.items() if e.stage == SOURCE)
