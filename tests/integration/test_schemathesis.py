"""schemathesis against the running API, as an outside tester would run it.

The API is served on PostgreSQL and Redis, a worker drains the queues meanwhile (so that a
`wait` ends when its posting is applied or refused, as in a deployment), and schemathesis
loads the OpenAPI document with a key and runs every phase (examples, coverage, fuzzing,
stateful) with all its checks, a fixed seed and a bounded number of examples per operation.
It must find nothing: no server error, no answer the document does not describe, no
request the document allows refused for its shape, none it forbids accepted.

The one allowance, in `CONFIG`: a request the document allows may still be refused 422
where the rule is one no schema states (debits equal credits, the accounts differ and
exist, the currency is an ISO 4217 code with a minor unit and the amount has no more
decimals than it; an operator's retry names keys or `all`, not both). Those refusals are
documented on each operation, with their stable codes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.context import Runtime
from tests.integration.conftest import drain

SEED = 20_241_111
EXAMPLES_PER_OPERATION = 100
RUN_S_MAX = 240
# schemathesis's own default for this check, and 422.
ACCEPTED = '["2xx", "3xx", "401", "403", "404", "409", "422", "429"]'
CONFIG = "".join(
    f"""
[[operations]]
include-method = "POST"
include-path = "{path}"
checks.positive_data_acceptance.expected-statuses = {ACCEPTED}
"""
    for path in ("/api/v1/transactions", "/api/v1/accounts", "/api/v1/ops/retry")
)


@pytest.mark.slow
def test_schemathesis_finds_nothing(
    runtime: Runtime, api_url: str, api_key: str, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{api_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {api_key}",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--workers",
        "1",
        "--request-timeout",
        "35",
        "--generation-database",
        "none",
    ]
    output = tmp_path / "schemathesis.out"
    with output.open("w") as out:
        run = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            # The worker runs here, in the main thread, as RQ wants: a `wait` then ends when
            # its posting is applied or refused, as in a deployment.
            deadline = time.monotonic() + RUN_S_MAX
            while run.poll() is None:
                assert time.monotonic() < deadline, f"schemathesis ran past {RUN_S_MAX} s"
                drain(runtime)
                time.sleep(0.05)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    report = output.read_text()
    assert run.returncode == 0, report[-15_000:]
    assert "Tested: " in report, report[-15_000:]
