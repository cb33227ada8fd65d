"""Print pip constraints that pin every runtime dependency to the lowest version pyproject.toml allows.

Reads `[project] dependencies` (the one place the floors are declared) and turns each `name>=X` into
`name==X`, keeping its environment marker. `make test-lowest` installs with these constraints, so the
floors a user is promised are the versions the suite runs against. A dependency without a `>=` floor
is an error: an unbounded dependency has no lowest version to test.

Runs on the interpreter that builds the venv, before anything is installed: tomllib (3.11+), else the
tomli that pip vendors.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

# name[extras] >=X [, other clauses] [; marker]
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*"
    r"(?P<specs>[^;]*?)\s*(?:;\s*(?P<marker>.+?))?\s*$"
)
_FLOOR = re.compile(r">=\s*(?P<version>[0-9][0-9A-Za-z.+!-]*)")


def lowest(requirement: str) -> str:
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise SystemExit(f"cannot read requirement {requirement!r}")
    floor = _FLOOR.search(match["specs"])
    if floor is None:
        raise SystemExit(f"{requirement!r} has no '>=' floor: nothing to pin the lowest version to")
    pin = f"{match['name']}=={floor['version']}"
    return f"{pin}; {match['marker']}" if match["marker"] else pin


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    dependencies = tomllib.loads(path.read_text(encoding="utf-8"))["project"]["dependencies"]
    lines = [f"# Generated from {path.name} [project] dependencies by .ci/lowest_constraints.py"]
    lines += [lowest(requirement) for requirement in dependencies]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
