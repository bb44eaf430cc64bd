"""What ships: the library wheel holds the library only; the reference workload is its own package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.cli_output import error_lines


def build_wheel(source: Path, files: list[str], tmp_path: Path) -> list[str]:
    """The file names in the wheel built from a copy of ``files`` of ``source`` (setuptools writes a
    build/ directory next to the sources; the checkout stays as it is)."""
    copy, out = tmp_path / "source", tmp_path / "wheel"
    for name in files:
        if (source / name).is_dir():
            shutil.copytree(source / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            copy.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / name, copy / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(copy)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_the_library_wheel_holds_no_demo_and_keeps_its_data_files(repo_root: Path, tmp_path: Path) -> None:
    names = build_wheel(repo_root, ["pyproject.toml", "README.md", "src"], tmp_path)
    assert not [name for name in names if "demo" in name]
    assert "taskplane/py.typed" in names
    assert "taskplane/redis/lua/record_write.lua" in names
    assert "taskplane/middleware/chain.py" in names


def test_the_demo_is_its_own_package_on_the_public_api(repo_root: Path, tmp_path: Path) -> None:
    example = repo_root / "examples" / "monitoring"
    names = build_wheel(example, ["pyproject.toml", "README.md", "taskplane_demo"], tmp_path)
    assert "taskplane_demo/tasks.py" in names
    assert not [name for name in names if name.startswith("taskplane/")]
    # Only the public API: names from ``taskplane`` itself, ``taskplane.stack`` (the local processes).
    imported = set()
    for path in (example / "taskplane_demo").glob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("from", "import") and words[1].startswith("taskplane."):
                imported.add(words[1])
    assert imported <= {"taskplane.stack"}, imported


def test_the_demo_command_says_how_to_install_the_demo_when_it_is_missing() -> None:
    hide = "import sys; sys.modules['taskplane_demo'] = None; sys.argv = ['taskplane', 'demo']"
    result = subprocess.run(
        [sys.executable, "-c", f"{hide}; from taskplane.cli.main import main; main()"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert "pip install -e examples/monitoring" in result.stderr and "make demo" in result.stderr
