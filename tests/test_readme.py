"""The README's commands are the ones CI runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_starts_with_the_two_commands():
    commands = _readme_commands()
    assert len(commands) >= 2
    assert commands[0].endswith("omniconv demo")
    assert "pytest" in commands[1]
    assert "torch==2.13.0" in commands[0] and "torch==2.13.0" in commands[1]


def test_ci_runs_the_readme_test_command_exactly():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines


def _readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.+?)\n```", text, flags=re.S)


def test_readme_has_the_quick_start_snippets():
    snippets = _readme_snippets()
    assert len(snippets) >= 6
    imports = "\n".join(snippets)
    for front_end in (
        "omniconv.compat.paddle",
        "omniconv.compat.gluon",
        "omniconv.compat.megengine",
    ):
        assert front_end in imports


@pytest.mark.parametrize("index", range(len(_readme_snippets())))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    """Each quick-start snippet runs as written, on its own (its asserts are the checks),
    in an empty directory (some write files)."""
    monkeypatch.chdir(tmp_path)
    code = _readme_snippets()[index]
    exec(compile(code, f"README.md snippet {index}", "exec"), {"__name__": f"readme_{index}"})
