"""The docs' examples must stay true: the README's strategy validates, its commands exist."""
from __future__ import annotations

import re
from pathlib import Path

from failover_engine.cli.main import build_parser
from failover_engine.config.loader import load_strategy, parse_strategy

ROOT = Path(__file__).resolve().parents[2]


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("---")[0]
    assert "make drill" in head and "make test" in head


def test_readme_strategy_is_the_example_file_and_validates():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## A strategy file\n\n```yaml\n(.*?)```", readme, re.S).group(1)
    example = (ROOT / "docs" / "examples" / "strategy.yaml").read_text()
    assert block.strip() in example
    parse_strategy(block)
    loaded = load_strategy(ROOT / "docs" / "examples" / "strategy.yaml")
    assert list(loaded.strategy.services) == ["shop"]


def test_readme_cli_commands_parse():
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    lines = [ln.split("#")[0].split() for ln in readme.splitlines() if ln.startswith("failover ")]
    assert len(lines) >= 8
    for argv in lines:
        args = parser.parse_args(argv[1:])
        assert callable(args.func), argv
