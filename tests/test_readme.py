"""The README documents every flag each script accepts."""

import importlib.util

import pytest
from conftest import REPO


def parser_of(script):
    spec = importlib.util.spec_from_file_location(script.replace("-", "_").removesuffix(".py"), REPO / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the scripts only run under __main__
    return module.parse_args()


@pytest.mark.parametrize("script", ["trainer_teacher.py", "distilled-bert.py", "evaluate.py"])
def test_every_flag_is_in_the_readme(script):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    flags = [s for action in parser_of(script)._actions for s in action.option_strings if s.startswith("--") and s != "--help"]
    missing = [f for f in flags if f"`{f}" not in readme]
    assert not missing, f"{script}: flags missing from README.md: {missing}"
