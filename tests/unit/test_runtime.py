"""The tests, the local stack and production run one Python: the deployed runtime."""

from __future__ import annotations

import re
import sys

from shared.platform.settings import REPO_ROOT


def deployed_versions() -> set[tuple[int, int]]:
    """Python versions named by the function runtime (Terraform) and the runner image."""
    functions_tf = (REPO_ROOT / "terraform" / "functions.tf").read_text()
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    versions = {(3, int(m)) for m in re.findall(r'runtime\s*=\s*"python3(\d+)"', functions_tf)}
    versions |= {(3, int(m)) for m in re.findall(r"^FROM python:3\.(\d+)", dockerfile, re.M)}
    return versions


def test_functions_and_runner_image_name_one_python_version() -> None:
    assert len(deployed_versions()) == 1, deployed_versions()


def test_the_suite_runs_on_the_deployed_python() -> None:
    (deployed,) = deployed_versions()
    assert sys.version_info[:2] == deployed, (
        f"tests run on {sys.version_info[0]}.{sys.version_info[1]}, production on "
        f"{deployed[0]}.{deployed[1]}: recreate .venv with `make venv`"
    )
