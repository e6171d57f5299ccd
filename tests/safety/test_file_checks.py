"""Whether a checkpoint file is whole, read from its own structure: a plain pickle is walked to its end.
(Each kind of file of a real checkpoint, cut short: test_checkpoints.py.)"""

import pickle

from kd_bert.safety.file_checks import file_problem


def test_a_plain_pickle_is_walked_to_its_end(tmp_path):
    path = tmp_path / "custom_checkpoint_0.pkl"
    data = pickle.dumps({"step": 7, "values": list(range(100))})
    path.write_bytes(data)
    assert file_problem(path) is None
    path.write_bytes(data[:-5])
    assert "not a complete pickle" in file_problem(path)
