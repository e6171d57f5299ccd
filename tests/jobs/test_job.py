"""What every training job shares: with --compare_no_kd, each of the two runs resumes from its own
checkpoints."""


def test_with_compare_no_kd_each_run_resumes_from_its_own_checkpoints(tmp_path):
    """A --compare_no_kd call stopped while its first student trained: `latest` continues that student,
    and the second, which has no checkpoint yet, starts fresh instead of being refused; a checkpoint
    named by path is the run's whose folder holds it, the other run continuing from its own newest."""
    from types import SimpleNamespace

    from helpers import logged

    from kd_bert.jobs.job import _resume_value

    out = tmp_path / "models"
    for step in (10, 20):
        (out / "checkpoints" / "student" / f"step-{step}").mkdir(parents=True)

    def job(value):
        return SimpleNamespace(train=SimpleNamespace(output_dir=str(out), resume_from_checkpoint=value),
                               roles=["student", "student_no_kd"])

    assert _resume_value(job("latest"), "student") == "latest"
    with logged() as said:
        assert _resume_value(job("latest"), "student_no_kd") is None
    assert "starts from the beginning" in said[0]
    (out / "checkpoints" / "student_no_kd" / "step-5").mkdir(parents=True)
    assert _resume_value(job("latest"), "student_no_kd") == "latest"
    twin_step = str(out / "checkpoints" / "student_no_kd" / "step-5")
    assert _resume_value(job(twin_step), "student") == "latest"
    assert _resume_value(job(twin_step), "student_no_kd") == twin_step
    single = SimpleNamespace(train=SimpleNamespace(output_dir=str(out), resume_from_checkpoint="latest"),
                             roles=["teacher"])
    assert _resume_value(single, "teacher") == "latest"  # one run: `latest` with nothing there stays an error
