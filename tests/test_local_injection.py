"""Values reach shards literally: no shell, no re-expansion of placeholders (DESIGN §7)."""

from __future__ import annotations

import json
from pathlib import Path

from exo.backends.local import LocalBackend, LocalOptions

from .localrun import HEADER, plan, py_command, run, write

VALUES = [
    "two words  and   spaces",
    "it's \"double\" and 'single' quoted",
    "$(touch PWNED_subshell)",
    "; touch PWNED_semicolon ;",
    "`touch PWNED_backtick`",
    "first line\nsecond line; $(touch PWNED_newline)",
    "{output} {batch_index} {{doubled}}",
    "$HOME ${PATH} \\ back|pipe > redirect & amp * ?",
    "--flag=value",
    "",
]

DUMP = (
    "import json, os, sys; "
    "n = len(sys.argv) - 3; "
    "json.dump({'argv': sys.argv[3:], 'env': [os.environ['V%d' % i] for i in range(n)],"
    " 'input': sys.argv[2], 'out_ok': os.path.isdir(sys.argv[1])},"
    " open(os.path.join(sys.argv[1], 'seen.json'), 'w'))"
)


def test_params_and_placeholders_are_passed_literally(tmp_path: Path) -> None:
    params = {f"p{i}": v for i, v in enumerate(VALUES)}
    decls = "\n".join(f'param p{i} = "x"' for i in range(len(VALUES)))
    env = "\n".join(f'    V{i} = "{{p{i}}}"' for i in range(len(VALUES)))
    args = ["{output}", "{input}", *(f"{{p{i}}}" for i in range(len(VALUES)))]
    uri = "data/it's; $(touch PWNED_uri) `x` {{braces}}.txt"
    wf = write(
        tmp_path / "wf.exo",
        decls
        + HEADER
        + f"""
dataset odd {{
  uri   = {json.dumps(uri)}
  items = 1
}}

step echo {{
  input    = odd
  command  = {py_command(DUMP, *args)}
  output   = "out dir/it's $(x) {{run_id}}"
  duration = 1m
  env {{
{env}
  }}
}}
""",
    )
    planned = plan(wf, params)
    report = run(planned, wf)
    assert report.state == "done", report
    published = tmp_path / "out dir" / f"it's $(x) {report.run_id}" / "shard-0" / "seen.json"
    seen = json.loads(published.read_text())
    assert seen["argv"] == VALUES
    assert seen["env"] == VALUES
    assert seen["input"] == "data/it's; $(touch PWNED_uri) `x` {braces}.txt"
    assert seen["out_ok"] is True
    assert not [p for p in tmp_path.rglob("PWNED*")]
    # The emitted manifest keeps the values as data too.
    [artifact] = LocalBackend().emit(planned, LocalOptions())
    manifest = json.loads(artifact.content)
    command = manifest["steps"][0]["command"]
    assert [c.replace("{{", "{").replace("}}", "}") for c in command[5:]] == VALUES
