"""The ``neve`` dispatcher: every command group is reachable, and a command loads only its own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from neve.cli import main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("env", "registry", "models"):
        assert f"    {command} " in out


def test_an_unknown_command_names_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        main(["modles", "list"])
    assert "choose from 'env', 'registry', 'models'" in capsys.readouterr().err


def test_a_registry_command_does_not_load_the_envs_machinery():
    # neve models list should start fast: parsing it needs only the registry's commands.
    probe = (
        "import sys\nfrom neve.cli import _build_parser\n"
        "_build_parser(['models', 'list', '--help'])\n"
        "print('neve.envs' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
