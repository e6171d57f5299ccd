"""The flags page (docs/flags.md) documents every flag each script accepts, under the script's own name."""

import pytest
from helpers import REPO, parser_of


@pytest.mark.parametrize("script", ["trainer_teacher.py", "distilled-bert.py", "evaluate.py"])
def test_every_flag_is_on_the_flags_page(script):
    page = (REPO / "docs" / "flags.md").read_text(encoding="utf-8")
    # The script's own section: a flag another script has does not count for this one.
    section = page.split(f"\n## {script}\n", 1)[1].split("\n## ", 1)[0]
    flags = [s for action in parser_of(script)._actions for s in action.option_strings if s.startswith("--") and s != "--help"]
    missing = [f for f in flags if f"`{f}`" not in section]
    assert not missing, f"{script}: flags missing from docs/flags.md: {missing}"
