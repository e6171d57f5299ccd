"""Runs the entry scripts for the tests without paying their imports each time.

Started once per test session, this process imports torch, transformers, accelerate, kd_bert and
what most runs import later (matplotlib; about 6 seconds on 2 cores), then waits for requests on stdin, one JSON line each: a script, its
arguments, the environment, the working folder and two files for stdout and stderr. For each it
forks: the child is a fresh process that runs the script as `python script args...` would (as
__main__, with sys.argv and sys.path[0] set, its output in the files, its exit status its own); only
the imports are already done. Torch has run nothing in this process, so its thread pools start in
each child as in any new process. The reply is two JSON lines: the child's pid, then its exit status.

The child runs in the request's environment. Most variables are read when they are used, so setting
them in the child is enough; a few are read once, when a library is imported (IMPORT_TIME). Of those,
the ones in REAPPLIED are read again in the child, as the import would have read them: the hub's
offline switch and progress bars, the number of threads. A request that differs from the server's own
environment in any other import-time variable (HF_HOME, PYTHONPATH, ...) cannot be forked from here:
the test helpers (helpers.run_script) see that with `forkable` and run a fresh interpreter or a new
server instead. This module imports nothing heavy until main(), so that the helpers can ask it.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/support/ is two below

# Prefixes of the environment variables read when the libraries main() imports are imported (or by the
# interpreter at start).
IMPORT_TIME = ("HF_", "HUGGINGFACE", "TRANSFORMERS_", "TOKENIZERS_", "ACCELERATE_", "TORCH", "PYTORCH", "OMP_",
               "MKL_", "KMP_", "CUDA", "PYTHON", "DATASETS_", "HOME", "XDG_", "MPL", "ONNX")


def _offline() -> None:
    """The hub's offline switch, as huggingface_hub.constants and datasets.config compute it on import."""
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        hub.HF_HUB_OFFLINE = hub._is_true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))
    config = sys.modules.get("datasets.config")
    if config is not None:
        offline = os.environ.get("HF_DATASETS_OFFLINE")
        config.HF_HUB_OFFLINE = (hub.HF_HUB_OFFLINE if hub is not None else False) if offline is None \
            else offline.upper() in config.ENV_VARS_TRUE_VALUES
        config.HF_DATASETS_OFFLINE = config.HF_HUB_OFFLINE


def _progress_bars() -> None:
    """HF_HUB_DISABLE_PROGRESS_BARS: True, False or None (not set), in the two modules that copy it on import."""
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is None:
        return
    value = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")
    for name in ("huggingface_hub.constants", "huggingface_hub.utils.tqdm"):
        if name in sys.modules:
            sys.modules[name].HF_HUB_DISABLE_PROGRESS_BARS = None if value is None else hub._is_true(value)


def _threads() -> None:
    """OMP_NUM_THREADS (or MKL_NUM_THREADS): the OpenMP runtime reads it when torch loads; set_num_threads
    before the first operation gives the child the pool a fresh process with the variable would have."""
    import torch

    torch.set_num_threads(_thread_count(os.environ))


def _thread_count(env: dict) -> int | None:
    value = env.get("MKL_NUM_THREADS", env.get("OMP_NUM_THREADS", ""))
    return int(value) if value.strip().isdigit() and int(value) > 0 else None


def _live() -> None:
    """Read by the library each time it is used (the tokenizers' TOKENIZERS_PARALLELISM): nothing to do."""


# Import-time variables the child reads again, and what reads them. A variable not here (or a thread
# count that is not a positive number) makes a request unforkable when it differs from the server's.
REAPPLIED = {
    "HF_HUB_OFFLINE": _offline,
    "TRANSFORMERS_OFFLINE": _offline,
    "HF_DATASETS_OFFLINE": _offline,
    "HF_HUB_DISABLE_PROGRESS_BARS": _progress_bars,
    "OMP_NUM_THREADS": _threads,
    "MKL_NUM_THREADS": _threads,
    "TOKENIZERS_PARALLELISM": _live,
}


def changed(started: dict, wanted: dict) -> set[str]:
    """The import-time variables whose values differ between the two environments."""
    return {k for k in {*started, *wanted} if k.startswith(IMPORT_TIME) and started.get(k) != wanted.get(k)}


def forkable(started: dict, wanted: dict) -> bool:
    """Whether a server started in environment `started` can run a script as a fresh interpreter in
    environment `wanted` would: every import-time difference is one the child reads again."""
    differ = changed(started, wanted)
    if not differ <= REAPPLIED.keys():
        return False
    return not differ & {"OMP_NUM_THREADS", "MKL_NUM_THREADS"} or _thread_count(wanted) is not None


def run_child(request: dict, started: dict) -> int:
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for reread in {REAPPLIED[name] for name in changed(started, request["env"])}:
        reread()
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)
    script = request["script"]
    sys.argv = [script, *request["args"]]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    try:
        runpy.run_path(script, run_name="__main__")
        return 0
    except SystemExit as exc:  # what the interpreter would make of it
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1


def main() -> None:
    started = dict(os.environ)
    sys.path[0] = REPO  # where the scripts find kd_bert, as when they run from the repo root
    import accelerate  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import kd_bert.jobs.distill  # noqa: F401
    import kd_bert.jobs.evaluate  # noqa: F401
    import kd_bert.jobs.teacher  # noqa: F401

    # What most runs import when they get there, about 0.5 s a run: matplotlib for the charts of every
    # training run and evaluation (Agg, as kd_bert.scoring.report sets it), the TensorBoard writer, and
    # onnx (optional) for the exports. None of them starts a thread here; pandas (pyarrow's allocator),
    # scikit-learn and onnxruntime would, so they are left to the runs that use them.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import matplotlib.ticker  # noqa: F401
    import torch.utils.tensorboard  # noqa: F401

    try:
        import onnx  # noqa: F401
    except ImportError:
        pass

    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                status = run_child(request, started)
                atexit._run_exitfuncs()  # what the interpreter runs at exit (logging's flush, ...)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
