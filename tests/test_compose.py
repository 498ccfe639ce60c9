"""deploy/: the full stack as docker compose runs it, checked without a Docker engine.

The compose file is read as Compose reads it (YAML with merge keys, ``${VAR:-default}`` and
``${VAR:?error}`` interpolated from deploy/env.example): every servicescore setting it passes is a
real setting that the product accepts with that value; the services run real commands of the
image's entry point; every service a dependency waits for has a health check, every file it
mounts exists; the ClickHouse user, database and addresses agree between the services, the
Grafana provisioning and Prometheus; the image installs exactly the packages pyproject.toml
ships.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from servicescore.cli import build_parser
from servicescore.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
PRODUCT = ("migrate", "worker", "sink", "api")
LONG_RUNNING = ("kafka", "clickhouse", "worker", "sink", "api", "prometheus", "grafana")
VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def example_env() -> dict[str, str]:
    """deploy/env.example: the secrets set, the optional values commented out."""
    values = {}
    for line in (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: a set variable, else the default; a required one unset fails."""
    def value(match: re.Match) -> str:
        name, kind, rest = match[1], match[2], match[3]
        if name in env:
            return env[name]
        assert kind != "?", f"${{{name}}} is required and deploy/env.example does not set it"
        return rest if kind == "-" else ""

    return VARIABLE.sub(value, text.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8"), example_env()))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_the_stack_has_every_part(compose):
    assert set(compose["services"]) == {"kafka", "clickhouse", "migrate", "worker", "sink",
                                        "api", "prometheus", "grafana"}


def test_every_servicescore_variable_is_a_setting_the_product_accepts(compose):
    fields = Settings.model_fields
    for name in PRODUCT:
        env = environment(compose["services"][name])
        ours = {k: v for k, v in env.items() if k.startswith("SERVICESCORE_")}
        assert ours, name
        unknown = [k for k in ours if k.removeprefix("SERVICESCORE_").lower() not in fields]
        assert not unknown, f"{name} passes {unknown}, which servicescore does not read"
        settings = Settings(_env_file=None, **{
            k.removeprefix("SERVICESCORE_").lower(): v for k, v in ours.items()})
        assert not settings.embedded and settings.database == "servicescore"
        assert settings.api_secret  # the API listens beyond loopback: it needs its token


def test_every_variable_compose_reads_is_documented_in_env_example():
    used = {m[1] for m in VARIABLE.finditer(COMPOSE.read_text(encoding="utf-8"))}
    text = (DEPLOY / "env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?(\w+)=", text, re.MULTILINE))
    assert used <= documented, used - documented


def test_the_services_run_commands_of_the_image(compose):
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["servicescore"]' in dockerfile
    parser = build_parser()
    for name in PRODUCT:
        service = compose["services"][name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["image"] == compose["services"]["worker"]["image"]
        args = parser.parse_args(service["command"])
        assert hasattr(args, "handler"), f"{name}: {service['command']} is no command"
    assert compose["services"]["migrate"]["command"] == ["migrate"]
    assert compose["services"]["migrate"]["restart"] == "no"


def test_dependencies_wait_for_health_and_the_migration(compose):
    services = compose["services"]
    for name in LONG_RUNNING:
        if name != "worker":  # it serves no HTTP endpoint (see its comment)
            check = services[name]["healthcheck"]["test"]
            assert check[0] in ("CMD", "CMD-SHELL") and len(check) > 1, name
        assert services[name]["restart"] == "unless-stopped", name
    for name, service in services.items():
        for needed, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits for {needed}'s health"
            else:
                assert (how["condition"], needed) == ("service_completed_successfully",
                                                      "migrate"), name
    for name in ("worker", "sink", "api"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_state_lives_in_volumes_and_mounted_files_exist(compose):
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, _, target = volume.partition(":")
            if not target:
                continue  # an anonymous volume of each replica (the worker's tables)
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    assert "/var/lib/servicescore" in compose["services"]["worker"]["volumes"]
    for name, path in (("kafka", "/var/lib/kafka/data"), ("clickhouse", "/var/lib/clickhouse"),
                       ("prometheus", "/prometheus"), ("grafana", "/var/lib/grafana")):
        assert any(v.endswith(":" + path) and not v.startswith(".")
                   for v in compose["services"][name]["volumes"]), name


def test_kafka_runs_in_kraft_mode_and_the_services_reach_it(compose):
    env = environment(compose["services"]["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("ZOOKEEPER" in k for k in env)
    node = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node}@kafka:")
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a Kafka Uuid
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    bootstrap = environment(compose["services"]["worker"])["SERVICESCORE_KAFKA_BOOTSTRAP"]
    assert advertised["PLAINTEXT"] == bootstrap == "kafka:9092"


def test_clickhouse_user_database_and_address_agree_everywhere(compose):
    services = compose["services"]
    server = environment(services["clickhouse"])
    dsn = urlsplit(environment(services["sink"])["SERVICESCORE_CLICKHOUSE_DSN"])
    assert (dsn.hostname, dsn.port, dsn.username, dsn.password, dsn.path) == (
        "clickhouse", 8123, server["CLICKHOUSE_USER"], server["CLICKHOUSE_PASSWORD"],
        "/" + server["CLICKHOUSE_DB"])
    # Grafana's user: read-only on that database, its password from the server's environment
    users = ET.parse(DEPLOY / "clickhouse" / "users.d" / "grafana.xml").getroot()
    user = users.find("users/grafana")
    assert user.find("password").get("from_env") == "GRAFANA_CLICKHOUSE_PASSWORD"
    assert "GRAFANA_CLICKHOUSE_PASSWORD" in server
    profile = users.find(f"profiles/{user.find('profile').text}")
    assert profile.find("readonly").text == "1"
    assert profile.find("constraints/max_execution_time/changeable_in_readonly") is not None
    assert [d.text for d in user.findall("allow_databases/database")] == [server["CLICKHOUSE_DB"]]


def test_grafana_provisions_the_plugin_sources_and_dashboards(compose):
    grafana = compose["services"]["grafana"]
    env = environment(grafana)
    provisioning = DEPLOY / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "servicescore.yml").read_text(
        encoding="utf-8"))["datasources"]
    (clickhouse,) = [s for s in sources if s["type"] == "grafana-clickhouse-datasource"]
    (prometheus,) = [s for s in sources if s["type"] == "prometheus"]
    assert env["GF_PLUGINS_PREINSTALL_SYNC"].split("@")[0] == clickhouse["type"]

    def provided(value: str) -> str:  # Grafana expands $NAME from its environment
        return re.sub(r"\$(\w+)", lambda m: env[m[1]], str(value))

    data = {k: provided(v) for k, v in clickhouse["jsonData"].items()}
    assert (data["host"], data["username"], data["defaultDatabase"], data["protocol"]) == (
        "clickhouse", "grafana", environment(compose["services"]["clickhouse"])["CLICKHOUSE_DB"],
        "native")
    assert provided(clickhouse["secureJsonData"]["password"]) == \
        environment(compose["services"]["clickhouse"])["GRAFANA_CLICKHOUSE_PASSWORD"]
    assert urlsplit(provided(prometheus["url"])).hostname == "prometheus"
    providers = yaml.safe_load((provisioning / "dashboards" / "servicescore.yml").read_text(
        encoding="utf-8"))["providers"]
    mounts = dict(v.split(":")[:2][::-1] for v in grafana["volumes"])
    for provider in providers:
        assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana" / "dashboards" / Path(home).name).exists()
    assert Path(home).parent.as_posix() == providers[0]["options"]["path"]


def test_prometheus_scrapes_the_processes_that_serve_metrics(compose):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(
        encoding="utf-8"))
    port = Settings(_env_file=None, api=environment(compose["services"]["sink"])[
        "SERVICESCORE_API"]).api_address[1]
    targets = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets |= {(name, sd["port"]) for name in sd["names"]}
        for static in job.get("static_configs", []):
            targets |= {(t.split(":")[0], int(t.split(":")[1])) for t in static["targets"]}
    worker = environment(compose["services"]["worker"])["SERVICESCORE_METRICS"]
    metrics_port = Settings(_env_file=None, metrics=worker).metrics_address[1]
    assert targets == {("sink", port), ("api", port), ("worker", metrics_port)}
    assert all(compose["services"][name]["command"] == ["worker" if name == "worker" else "sink"]
               for name, _ in targets)


def test_the_image_installs_what_pyproject_ships():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    sources = set()
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            sources |= set(line.split()[1:-1])  # COPY source... destination
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    include = re.search(r'include = \[([^\]]*)\]', pyproject)[1]
    packages = {p.strip().strip('"').rstrip("*") for p in include.split(",")}
    assert packages | {"pyproject.toml", "README.md"} <= sources
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    data_dir = re.search(r"SERVICESCORE_DATA_DIR=(\S+)", dockerfile)[1]
    assert data_dir == "/var/lib/servicescore"
