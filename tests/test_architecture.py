"""The house rules that keep the web process light and the imports one-way."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("web", "worker", "trainer")
CORE, INFERENCE, CLI = "sentiment_core", "sentiment_inference", "sentiment_cli"
HEAVY = ("tensorflow", "keras", "numpy")


def imported_packages(package: str) -> set[str]:
    found = set()
    for file in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_core_imports_no_service() -> None:
    assert imported_packages(CORE) & {*SERVICES, INFERENCE, CLI} == set()


def test_the_tensorflow_side_imports_only_the_ground_floor() -> None:
    assert imported_packages(INFERENCE) & {*SERVICES, CLI} == set()


@pytest.mark.parametrize("service", SERVICES)
def test_services_never_import_each_other(service: str) -> None:
    others = {*SERVICES, CLI} - {service}
    assert imported_packages(service) & others == set()


def test_the_web_imports_neither_the_tensorflow_side_nor_numerics() -> None:
    assert imported_packages("web") & {INFERENCE, *HEAVY} == set()


def test_the_web_process_never_loads_tensorflow(settings, tiny_model) -> None:
    script = f"""
import json, sys
from sentiment_core.settings import Settings
from web.app import create_app
app = create_app(Settings(database_url={settings.database_url!r}, redis_url="redis://127.0.0.1:1/0"))
client = app.test_client()
pages = [client.get(url).status_code for url in ("/", "/api/v1/models", "/healthz", "/readyz")]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
print(json.dumps({{"pages": pages, "heavy": heavy}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["pages"] == [200, 200, 200, 503]  # not ready: no broker on port 1
    assert report["heavy"] == []
