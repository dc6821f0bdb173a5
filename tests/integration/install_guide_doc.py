"""The runnable parts of docs/install.md, as tests/integration/test_install_guide.py reads them.

Convention in the guide: an HTML comment `<!-- tested: NAME -->` on the line right before a
fenced block names that block.  A `sh` block holds one command per line (a trailing `\\`
continues it); a `yaml` block starts with a comment line naming the file it is saved as
(`# gpucost-values.yaml`).  Unmarked blocks are for reading only.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpucost_testing.servers import REPO_ROOT

INSTALL_GUIDE = REPO_ROOT / "docs" / "install.md"
_MARK = re.compile(r"^<!-- tested: ([a-z0-9-]+) -->$")
_FILE_NAME = re.compile(r"^# ([\w.-]+\.yaml)\b")


@dataclass(frozen=True)
class MarkedBlock:
    name: str
    line: int  # of the opening fence, 1-based
    info: str
    body: tuple[str, ...]

    def commands(self) -> list[list[str]]:
        """Each command of a `sh` block as the shell would split it."""
        assert self.info == "sh", f"install.md:{self.line}: block {self.name!r} is {self.info!r}, not sh"
        joined = "\n".join(self.body).replace("\\\n", " ")
        return [shlex.split(line) for line in joined.split("\n") if line.strip() and not line.lstrip().startswith("#")]

    def file_name(self) -> str:
        """The name a `yaml` block is saved as (its first line)."""
        assert self.info == "yaml", f"install.md:{self.line}: block {self.name!r} is {self.info!r}, not yaml"
        found = _FILE_NAME.match(self.body[0]) if self.body else None
        assert found, f"install.md:{self.line}: a tested yaml block starts with `# NAME.yaml`"
        return found.group(1)

    def text(self) -> str:
        return "\n".join(self.body) + "\n"

    def document(self) -> Any:
        return yaml.safe_load(self.text())


def marked_blocks(path: Path = INSTALL_GUIDE) -> dict[str, MarkedBlock]:
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks: dict[str, MarkedBlock] = {}
    for index, line in enumerate(lines):
        mark = _MARK.match(line)
        if mark is None:
            continue
        name = mark.group(1)
        assert name not in blocks, f"install.md:{index + 1}: a second block named {name!r}"
        fence = index + 1
        assert fence < len(lines) and lines[fence].startswith("```"), (
            f"install.md:{index + 1}: `<!-- tested: {name} -->` must be followed by a fenced block"
        )
        end = fence + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        blocks[name] = MarkedBlock(name, fence + 1, lines[fence][3:].strip(), tuple(lines[fence + 1:end]))
    return blocks


def flag_value(argv: list[str], flag: str) -> str:
    """The value of `--flag=value` in argv (exactly one)."""
    values = [arg.split("=", 1)[1] for arg in argv if arg.startswith(flag + "=")]
    assert len(values) == 1, f"{flag} given {len(values)} times in {shlex.join(argv)}"
    return values[0]


def after_double_dash(argv: list[str]) -> list[str]:
    """What `kubectl exec POD -- COMMAND...` runs in the pod."""
    assert argv[:1] == ["kubectl"] and "exec" in argv and "--" in argv, shlex.join(argv)
    return argv[argv.index("--") + 1:]
