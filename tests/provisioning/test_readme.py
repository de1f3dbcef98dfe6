"""provisioning/README.md cites the deployment's files and the tool's commands: they must exist."""

from __future__ import annotations

import re
from pathlib import Path

from console.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "provisioning" / "README.md").read_text()


def test_the_kustomize_files_it_cites_exist() -> None:
    cited = set(re.findall(r"`((?:operators/|base/)?[\w*./-]+?(?:networkpolicy|values)\.yaml)`", GUIDE))
    assert len(cited) >= 5
    for name in cited:
        pattern = name if "/" in name else f"base/**/{name}"
        assert list((REPO / "kustomize").glob(pattern)), f"README cites kustomize/{pattern}, which matches nothing"


def test_every_command_it_shows_parses() -> None:
    parser = build_parser()
    commands = re.findall(r"^\$ (todo-console provision .+?)(?:\s+#.*)?$", GUIDE, flags=re.MULTILINE)
    assert len(commands) >= 8
    for command in commands:
        args = command.split()[1:]
        args = [arg for arg in args if arg != ">" and not arg.startswith("~/.kube")]
        parser.parse_args(args)
