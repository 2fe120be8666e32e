"""The container deployment: the compose file runs any number of workers
(`docker compose up --scale worker=N`), the image runs as a non-root user, and no secret is
written in the repository (docs/SECURITY.md)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


def _repository_root() -> Path:
    """The directory holding `.git`. `make mutation` runs these tests from a copy under
    mutants/ that holds only the files pyproject's `also_copy` names."""
    here = Path(__file__).resolve()
    for directory in here.parents:
        if (directory / ".git").exists():
            return directory
    return here.parents[2]


ROOT = _repository_root()
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
# `${NAME:?message}`: compose refuses to start while NAME is unset or empty.
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}")
URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@]*:(?P<password>.*)@", re.IGNORECASE)


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return compose


def _services() -> dict[str, Any]:
    services: dict[str, Any] = _compose()["services"]
    return services


def _required_variable(text: str) -> str | None:
    """The variable that `text` consists of, when it is exactly one required variable."""
    match = REQUIRED_VARIABLE.fullmatch(text)
    return match.group(1) if match else None


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a parsed YAML document with where it is, keys included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key} (key)", str(key)
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def _environments() -> dict[str, dict[str, str]]:
    environments: dict[str, dict[str, str]] = {}
    for name, service in _services().items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: write environment as a mapping"
        environments[name] = environment
    return environments


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def test_the_worker_service_can_be_scaled() -> None:
    worker = _services()["worker"]
    # A fixed container name or a published port would make a second replica fail.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["ledgerflow", "worker"]  # takes a fair share, not pinned


def test_workers_stop_gracefully_and_start_after_the_schema() -> None:
    worker = _services()["worker"]
    assert worker["stop_signal"] == "SIGTERM"
    assert int(worker["stop_grace_period"].rstrip("s")) >= 10
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_process_of_a_deployment_agrees_on_the_partition_count() -> None:
    services = _services()
    environments = [services[name]["environment"] for name in ("migrate", "api", "worker")]
    assert len({env["LEDGERFLOW_PARTITIONS"] for env in environments}) == 1


def test_the_image_runs_as_a_non_root_user_it_creates_with_a_fixed_uid() -> None:
    instructions = _instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert "USER" in keywords, "the Dockerfile never leaves root"
    starts = [i for i, keyword in enumerate(keywords) if keyword in ("CMD", "ENTRYPOINT")]
    last_user = max(i for i, keyword in enumerate(keywords) if keyword == "USER")
    assert starts and last_user < min(starts), "USER must come before CMD and ENTRYPOINT"
    user = instructions[last_user][1].split(":")[0]
    assert user not in ("root", "0")
    created = [args for keyword, args in instructions if keyword == "RUN" and "useradd" in args]
    assert len(created) == 1, "the image creates its own service user"
    uid = re.search(r"--uid (\d+)", created[0])
    assert "--system" in created[0] and uid is not None, "a system user with a fixed uid"
    assert int(uid.group(1)) != 0
    assert user in (uid.group(1), created[0].split()[-1])


def test_the_service_user_owns_none_of_the_code() -> None:
    # The service writes only to PostgreSQL and Redis, so whoever takes over its process
    # cannot change the code it runs.
    for keyword, arguments in _instructions():
        if keyword in ("COPY", "ADD"):
            assert "--chown" not in arguments and "--chmod" not in arguments, arguments


def test_the_image_holds_every_package_the_project_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [pattern.rstrip("*") for pattern in found]
    copied = {
        next(word for word in args.split() if not word.startswith("--"))
        for keyword, args in _instructions()
        if keyword == "COPY"
    }
    assert set(packages) <= copied, f"the Dockerfile does not copy {set(packages) - copied}"


def test_no_password_is_written_in_the_compose_file() -> None:
    secrets = 0
    for where, text in _strings(_compose()):
        url = URL_PASSWORD.match(text)
        if url:
            assert _required_variable(url.group("password")), f"{where}: password in a URL"
            secrets += 1
    for service, environment in _environments().items():
        for key, value in environment.items():
            if "PASSWORD" in key or key.endswith("AUTH"):
                assert _required_variable(str(value)), f"{service}: {key} is written out"
                secrets += 1
    assert secrets >= 4  # the URLs and password settings were found, not skipped


def test_redis_requires_the_password_that_every_client_gives() -> None:
    command = _services()["redis"]["command"]
    assert "--requirepass" in command, "Redis accepts anyone who reaches it"
    password = command[command.index("--requirepass") + 1]
    assert _required_variable(password) == "REDIS_PASSWORD"
    urls = [
        environment["LEDGERFLOW_REDIS_URL"]
        for environment in _environments().values()
        if "LEDGERFLOW_REDIS_URL" in environment
    ]
    assert urls, "no service names Redis"
    for url in urls:
        match = re.fullmatch(r"redis://:(?P<password>\$\{[^}]+\})@redis:6379/\d+", url)
        assert match and _required_variable(match.group("password")) == "REDIS_PASSWORD", url


def test_the_database_url_carries_the_password_postgres_is_given() -> None:
    environments = _environments()
    postgres = _required_variable(environments["postgres"]["POSTGRES_PASSWORD"])
    assert postgres is not None
    for name in ("migrate", "api", "worker"):
        url = URL_PASSWORD.match(environments[name]["LEDGERFLOW_DATABASE_URL"])
        assert url and _required_variable(url.group("password")) == postgres, name


def test_postgres_and_redis_publish_no_port_and_the_api_only_on_loopback() -> None:
    services = _services()
    for name in ("postgres", "redis"):
        assert "ports" not in services[name], f"{name} is reachable from the host"
        assert services[name].get("network_mode") != "host", name
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert name == "api", f"{name} publishes {mapping}"
            assert str(mapping).startswith("127.0.0.1:"), f"the API is published on {mapping}"


def test_the_env_example_names_every_variable_compose_requires_and_no_value() -> None:
    required = set(REQUIRED_VARIABLE.findall(COMPOSE.read_text()))
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD"} <= required
    settings = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    assert set(settings) == required
    # Empty, so that a copy nobody filled in stops compose instead of starting it with a
    # password that is public.
    assert all(value == "" for value in settings.values()), settings


def test_the_env_file_is_ignored_by_git_and_the_example_is_not() -> None:
    def ignored(name: str) -> bool:
        check = ["git", "check-ignore", "--quiet", "--no-index", name]
        return subprocess.run(check, cwd=ROOT, check=False).returncode == 0

    assert ignored(".env"), "add .env to .gitignore"
    assert not ignored(".env.example")
    tracked = ["git", "ls-files", "--", ".env"]
    assert subprocess.run(tracked, cwd=ROOT, capture_output=True, text=True).stdout == ""
