"""The runner:

    python -m bench                      # lists the scenarios, one line each
    python -m bench SCENARIO [ARGS...]   # runs the scenario's main(ARGS)

A scenario prints its figures; with --publish (where it has one) it writes its tables into
their blocks of its document (bench/publish.py).
"""

from __future__ import annotations

import importlib
import sys

from bench.scenarios import SCENARIOS


def listing() -> str:
    width = max(len(name) for name in SCENARIOS)
    lines = ["usage: python -m bench SCENARIO [ARGS...]   (ARGS: python -m bench SCENARIO --help)", ""]
    lines += [f"  {name:<{width}}  {scenario.about}  [{scenario.doc}]" for name, scenario in SCENARIOS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(listing())
        return 0
    name, rest = argv[0], argv[1:]
    scenario = SCENARIOS.get(name)
    if scenario is None:
        print(f"bench: no scenario {name!r}; `python -m bench` lists them", file=sys.stderr)
        return 2
    module = importlib.import_module(scenario.module)
    return int(module.main([*scenario.args, *rest]) or 0)


if __name__ == "__main__":
    sys.exit(main())
