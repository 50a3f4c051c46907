"""One dbt process for many commands (tests only): run by the Python of Meltano's dbt-postgres
venv, it reads one JSON request a line on stdin ({"args", "env", "reuse_manifest"}), runs it with
dbt's programmatic runner (dbtRunner) and answers with the command's output and exit code.

A dbt process spends about 2 CPU-s importing dbt and reading its partial-parse file before the
first node runs; the dbt tests of the project start dbt 15 times in a row. Requests with
``reuse_manifest`` and the same environment and vars also skip parsing: the
manifest parsed for the first of them is passed to the next (dbtRunner(manifest=...)), as dbt's
documentation suggests for repeated invocations. Client: tests/support.py DbtWorker.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback

from dbt.cli.main import dbtRunner

#: Starts the line that ends an answer; what precedes it on stdout is the command's own output.
ANSWER = "\x1edbt-worker-answer "


def _parse_args(args: list[str]) -> list[str]:
    """`dbt parse` with the command's vars: a parse depends on them and the environment only."""
    at = args.index("--vars") if "--vars" in args else -1
    return ["parse", *(args[at : at + 2] if at >= 0 else [])]


def _run(request: dict, manifests: dict[str, object]) -> tuple[int, str]:
    args, env = list(request["args"]), dict(request["env"])
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            parse = _parse_args(args)
            key = (
                json.dumps([parse, sorted(env.items())]) if request.get("reuse_manifest") else None
            )
            if key is not None and key not in manifests:
                parsed = dbtRunner().invoke(parse)
                if parsed.success:
                    manifests[key] = parsed.result
            result = dbtRunner(manifest=manifests.get(key) if key else None).invoke(args)
        code = 0 if result.success else (2 if result.exception is not None else 1)
        if result.exception is not None:
            out.write(f"\n{result.exception!r}\n")
    except Exception:  # the answer carries it: the client's test fails with it
        out.write(traceback.format_exc())
        code = 2
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue()


def main() -> None:
    manifests: dict[str, object] = {}
    for line in sys.stdin:
        code, output = _run(json.loads(line), manifests)
        sys.stdout.write(output if output.endswith("\n") or not output else output + "\n")
        sys.stdout.write(ANSWER + json.dumps(code) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
