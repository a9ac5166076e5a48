"""The documentation site builds with Sphinx, warnings as errors and every cross-reference
checked (nitpicky), and a broken reference fails the build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ["index", "getting-started", "compare", "other-data", "cli", "python-api", "design", "cpp", "performance",
         "scaling"]


def sphinx(source: Path, out: Path, conf: Path = DOCS) -> subprocess.CompletedProcess:
    """The build that CI runs: HTML, -W (warnings are errors), --keep-going (report them all),
    -n (nitpicky: every reference must resolve)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", "-c", str(conf),
         str(source), str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    result = sphinx(DOCS, out)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    return out


def test_every_page_is_built_and_in_the_table_of_contents(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    for page in PAGES:
        assert (site / f"{page}.html").is_file(), page
        if page != "index":
            assert f'href="{page}.html"' in index, page


def test_the_python_api_comes_from_the_docstrings(site):
    api = (site / "python-api.html").read_text(encoding="utf-8")
    for name in ["rnnbptt.RNN.backward", "rnnbptt.StreamRunner", "rnnbptt.truncation.Regular", "rnnbptt.Trainer.fit",
                 "rnnbptt.tasks.train_task", "rnnbptt.tasks.DelayedRecall", "rnnbptt.clip.clip_grad_norm"]:
        assert f'id="{name}"' in api, name
    # Text that only the docstrings hold.
    assert "Forward, loss and backward in one" in api


def test_the_cli_page_is_generated_from_the_parser(site):
    from rnnbptt.cli import build_parser

    cli = (site / "cli.html").read_text(encoding="utf-8")
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name, parser in commands.items():
        assert f"rnnbptt {name}" in cli
        for action in parser._actions:
            for flag in action.option_strings:
                if action.help != "==SUPPRESS==":
                    assert flag in cli, (name, flag)


def test_a_broken_reference_fails_the_build(tmp_path):
    """The same configuration on a page with a broken reference of each kind."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "index.md").write_text(
        "# Broken\n\n"
        "A function that does not exist: {py:func}`rnnbptt.no_such_function`.\n\n"
        "A method of a real class that does not exist: {py:meth}`rnnbptt.RNN.no_such_method`.\n\n"
        "A page that does not exist: [nowhere](nowhere.md).\n\n"
        "```{eval-rst}\n.. autofunction:: rnnbptt.generate\n```\n",
        encoding="utf-8",
    )
    result = sphinx(source, tmp_path / "out")
    assert result.returncode != 0
    for name in ["rnnbptt.no_such_function", "rnnbptt.RNN.no_such_method", "nowhere.md"]:
        assert name in result.stderr, result.stderr
