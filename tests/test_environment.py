"""The pip and conda environments list the same packages with the same pins, and the set-up
files stay consistent with the README."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+\-]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
        elif line and not line.startswith("-"):
            raise AssertionError(f"unpinned or unparsable requirement: {line!r}")
    return pins


def requirements_pins():
    return _pins((ROOT / "requirements.txt").read_text().splitlines())


def conda_pins():
    text = (ROOT / "environment.yml").read_text()
    pip_block = text.split("- pip:", 1)[1]
    items = [ln.strip()[2:] for ln in pip_block.splitlines() if ln.strip().startswith("- ")]
    return _pins(i for i in items if i != "-e .")


def test_environment_yml_matches_requirements():
    req, conda = requirements_pins(), conda_pins()
    assert req, "requirements.txt lists no packages"
    assert req == conda, f"differ: only pip {set(req.items()) - set(conda.items())}, only conda {set(conda.items()) - set(req.items())}"


def test_environment_yml_uses_python_311_and_installs_lesson_lib():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"-\s*python=3\.11\b", text)
    assert "- -e ." in text


def test_torch_is_pinned_to_the_local_cpu_build():
    assert requirements_pins()["torch"] == "2.13.0"


def test_pins_parser_rejects_unpinned():
    import pytest
    with pytest.raises(AssertionError, match="unpinned"):
        _pins(["torch>=2"])


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make lab" in readme
