"""The gateway ships as one wheel that carries its data, and its compose file is valid."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SERVICES = {"rabbitmq", "postgres", "gateway"}
PRIVATE_KEY_SUFFIXES = (".key", ".pem")

# Checkout folder -> where pyproject's force-include puts it inside the wheel.
WHEEL_DATA = {
    "schemas": "gateway/_data/schemas",
    "contracts": "gateway/_data/contracts",
    "config": "gateway/_data/config",
}


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def _checkout_files(folder: str) -> list[str]:
    """Files of a data folder as the wheel should hold them, relative to the folder."""
    base = ROOT / folder
    if not base.is_dir():
        return []
    return sorted(
        path.relative_to(base).as_posix()
        for path in base.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and not any(part.startswith(".") for part in path.relative_to(base).parts)
        and path.suffix not in PRIVATE_KEY_SUFFIXES
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the project's wheel once, the way pip builds it."""
    out = tmp_path_factory.mktemp("wheel")
    result = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(ROOT)])
    if result.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{result.stdout}\n{result.stderr}")
    wheels = list(out.glob("vt_gateway-*.whl"))
    assert len(wheels) == 1, f"expected one vt_gateway wheel, found {wheels}"
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    """The members of the built wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.parametrize("folder", sorted(WHEEL_DATA))
def test_wheel_carries_every_data_file_of_the_checkout(wheel_names: set[str], folder: str) -> None:
    """Every file in schemas/, contracts/ and config/ is inside the wheel under gateway/_data/."""
    files = _checkout_files(folder)
    assert files, f"the checkout's {folder}/ has no files"
    expected = {f"{WHEEL_DATA[folder]}/{name}" for name in files}
    missing = sorted(expected - wheel_names)
    assert not missing, f"files of {folder}/ missing from the wheel: {missing}"


def test_wheel_declares_the_vt_gateway_command(wheel: Path) -> None:
    """The wheel installs the `vt-gateway` console script, pointing at gateway.cli:main."""
    with zipfile.ZipFile(wheel) as archive:
        [entry_points] = [
            n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")
        ]
        text = archive.read(entry_points).decode("utf-8")
    lines = [line.replace(" ", "") for line in text.splitlines()]
    assert "[console_scripts]" in lines
    assert "vt-gateway=gateway.cli:main" in lines


def test_wheel_holds_no_private_key_files(wheel_names: set[str]) -> None:
    """No *.key or *.pem file ends up in the wheel, wherever it lies in the checkout."""
    keys = sorted(name for name in wheel_names if name.endswith(PRIVATE_KEY_SUFFIXES))
    assert not keys, f"private key files in the wheel: {keys}"


def _compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) if it works, else `docker-compose`, else None."""
    docker = shutil.which("docker")
    if docker is not None and _run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    return None


def test_compose_file_is_accepted_by_docker_compose() -> None:
    """docker-compose.yml passes `docker compose config` and declares the three services."""
    compose = _compose_command()
    if compose is None:
        docker = shutil.which("docker")
        if docker is not None:
            pytest.fail(
                f"a docker client is installed ({docker}) but no Docker Compose implementation: "
                "neither `docker compose` nor `docker-compose` works, so docker-compose.yml "
                "cannot be checked. Install one (Debian: apt-get install "
                "--no-install-recommends docker-compose; .ci/run does this)."
            )
        _check_compose_structure_without_docker()
        return

    base = [*compose, "--file", str(COMPOSE_FILE)]
    checked = _run([*base, "config", "--quiet"])
    assert checked.returncode == 0, (
        f"{' '.join(base)} config rejects the file:\n{checked.stdout}{checked.stderr}"
    )
    listed = _run([*base, "config", "--services"])
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == COMPOSE_SERVICES


def _check_compose_structure_without_docker() -> None:
    """Without any docker tooling, parse the file and check its shape by hand."""
    try:
        import yaml
    except ImportError:
        pytest.fail(
            "neither docker nor Docker Compose nor PyYAML is installed here, so "
            "docker-compose.yml cannot be checked at all. Install docker-compose "
            "(Debian: apt-get install --no-install-recommends docker-compose) or run .ci/run."
        )
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    services = document["services"]
    assert set(services) == COMPOSE_SERVICES
    assert "healthcheck" in services["rabbitmq"]
    assert "healthcheck" in services["postgres"]
    assert services["gateway"]["depends_on"] == {
        "rabbitmq": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


def test_the_compose_deployment_settings_load_and_listen_beyond_the_container() -> None:
    """deploy/gateway.toml, which docker-compose.yml mounts, is a valid settings file.

    Inside a container the gateway must listen on every interface (compose publishes the
    port on the host's loopback only), and the dashboard's cookies are https-only.
    """
    assert "./deploy/gateway.toml:/etc/vt-gateway/gateway.toml" in COMPOSE_FILE.read_text()
    settings = load_settings(
        ROOT / "deploy" / "gateway.toml",
        {"VTGW_STORE_DSN": "postgresql+asyncpg://vtgw@postgres:5432/vtgw"},
    )
    assert settings.http_host == "0.0.0.0"  # noqa: S104 - the container's own interfaces
    assert settings.store_dsn.startswith("postgresql+asyncpg://")
    assert settings.dashboard is not None
    assert settings.dashboard.secure_cookies
    assert settings.keys_dir == Path("var/keys")
