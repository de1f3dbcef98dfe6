"""The README's quick start as data, and a place to run it as a new user would: the e2e test of the
sandbox runs its commands verbatim (one sandbox start serves both)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
QUICK_START = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
# The two one-line commands (run the system, run the tests), then the block to paste after them.
BLOCKS = [block.strip() for block in re.findall(r"```bash\n(.*?)```", QUICK_START, flags=re.DOTALL)]
UP_COMMAND = BLOCKS[0].rsplit("&&", 1)[1].strip()  # what the first command ends with: `sandbox up`
NEXT_BLOCK = BLOCKS[2]


def make_checkout(root: Path) -> Path:
    """`root` laid out as the quick start leaves a clone: `.venv/bin/todo-console` is this
    interpreter's entry point, so the commands run the code under test."""
    entry = root / ".venv" / "bin" / "todo-console"
    entry.parent.mkdir(parents=True)
    entry.write_text(f"#!{sys.executable}\nimport sys\nfrom console.cli import main\nsys.exit(main())\n")
    entry.chmod(0o755)
    return root


def bash(script: str, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`script` as pasted into bash, except that any failing command (or pipe stage) fails it."""
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def json_documents(text: str) -> tuple[list[dict[str, Any]], str]:
    """The JSON documents at the start of `text`, one after another (pretty or one per line), and
    what follows them."""
    decoder, pos = json.JSONDecoder(), 0
    documents: list[dict[str, Any]] = []
    while True:
        pos = len(text) - len(text[pos:].lstrip())
        if not text.startswith("{", pos):
            return documents, text[pos:]
        document, pos = decoder.raw_decode(text, pos)
        documents.append(document)
