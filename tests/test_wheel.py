"""The package stands on its own: a wheel built from the repository installs into a fresh environment
outside the repository and ``dopa-rl demo`` runs there (nothing in the package locates the checkout)."""
from __future__ import annotations

import os
import re
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dopa_rl"


def test_no_module_of_the_package_finds_the_repository() -> None:
    """``Path(__file__).parents[...]`` (or a walk up to the checkout) has no place in the installed package."""
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"__file__\)?\.resolve\(\)\.parents\[|__file__\)\.parent\.parent", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], f"modules that locate the repository: {offenders}"


@pytest.mark.slow
def test_wheel_installs_outside_the_repository_and_runs_the_demo(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("dopa_rl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dopa_rl/protocol/messages.py" in names and "dopa_rl/sim/device.py" in names
    assert not any(n.startswith(("tools/", "tests/", "protocol_codegen", "emulator_harness")) for n in names)

    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # the dependencies come from this test's environment (a .pth line), the package itself from the wheel only
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    Path(purelib, "_dopa_rl_test_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                    "--target", purelib, str(wheel)], check=True, cwd=tmp_path)
    # the installed copy, not the checkout's editable one, must be imported in the new environment
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(py), "-c", "import dopa_rl; print(dopa_rl.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(purelib), where
    demo = subprocess.run([str(py), "-m", "dopa_rl", "demo", "--out", str(work / "demo")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert any((work / "demo").iterdir())
