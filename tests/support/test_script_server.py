"""The script server (script_server.py) forks runs whose environment differs from its own in a variable
the libraries read on import only where the forked process can read it again; such a run then sees what
a fresh interpreter would."""

from __future__ import annotations

import json

import pytest
from helpers import run_script
from support.script_server import REAPPLIED, forkable

# What a script sees of each variable the server reads again in a forked process.
PROBE = """import json, sys
import datasets.config, huggingface_hub.constants as hub, huggingface_hub.utils.tqdm, torch
print(json.dumps({"threads": torch.get_num_threads(), "hub offline": hub.is_offline_mode(),
                  "datasets offline": [datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE],
                  "progress bars": [hub.HF_HUB_DISABLE_PROGRESS_BARS,
                                    sys.modules["huggingface_hub.utils.tqdm"].HF_HUB_DISABLE_PROGRESS_BARS]}))
"""

CHANGES = [
    {},
    {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
    {"MKL_NUM_THREADS": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "0",
     "HF_HUB_DISABLE_PROGRESS_BARS": "0", "TOKENIZERS_PARALLELISM": "true"},
    {"HF_DATASETS_OFFLINE": "1"},
]


def test_only_variables_the_fork_reads_again_are_forked():
    session = {"PATH": "/usr/bin", "HOME": "/home/someone", "TOKENIZERS_PARALLELISM": "false"}
    assert set().union(*CHANGES) == REAPPLIED.keys()  # the test below covers every one
    for change in CHANGES:
        assert forkable(session, {**session, **change}), change
    for change in ({"HF_HOME": "/elsewhere"}, {"PYTHONPATH": "/elsewhere"}, {"OMP_NUM_THREADS": "two"},
                   {"OMP_WAIT_POLICY": "passive"}):
        assert not forkable(session, {**session, **change}), change
    assert not forkable({**session, "OMP_NUM_THREADS": "1"}, session)  # no count to set: the default is unknown


@pytest.mark.slow  # a fresh interpreter for each, about 3 s; CI runs it with -m slow
@pytest.mark.parametrize("change", CHANGES, ids=lambda change: ",".join(change) or "none")
def test_a_forked_run_sees_what_a_fresh_interpreter_would(change, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    forked = run_script(probe, env=change)
    fresh = run_script(probe, env={**change, "KD_TEST_FRESH_PROCESSES": "1"})
    assert forked.returncode == 0 and fresh.returncode == 0, (forked, fresh)
    assert json.loads(forked.stdout) == json.loads(fresh.stdout)
