"""The ways to install: requirements files, environment.yml and the Makefile agree."""

import yaml

from dynvfx.paths import REPO_ROOT as ROOT


def _requirements(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_environment_yml_installs_the_requirements_and_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip
    files = [p.split(maxsplit=1)[1] for p in pip if p.startswith("-r ")]
    assert files and all((ROOT / f).exists() for f in files)
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_torch_is_not_pinned_so_colab_keeps_its_cuda_build():
    torch_lines = [r for r in _requirements("requirements.txt") if r.startswith("torch")]
    assert torch_lines and not any("==" in r for r in torch_lines)
    assert "-r requirements.txt" in _requirements("requirements-dev.txt")
