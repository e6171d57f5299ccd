"""Runs the entry scripts for the tests without paying their imports each time.

Started once per test session, this process imports torch, transformers, accelerate and kd_bert
(about 5 seconds on 2 cores), then waits for requests on stdin, one JSON line each: a script, its
arguments, the environment, the working folder and two files for stdout and stderr. For each it
forks: the child is a fresh process that runs the script as `python script args...` would (as
__main__, with sys.argv and sys.path[0] set, its output in the files, its exit status its own); only
the imports are already done. Torch has run nothing in this process, so its thread pools start in
each child as in any new process. The reply is two JSON lines: the child's pid, then its exit status.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import traceback

import accelerate  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/support/ is two below
sys.path[0] = REPO  # where the scripts find kd_bert, as when they run from the repo root

import kd_bert.jobs.distill  # noqa: E402, F401
import kd_bert.jobs.evaluate  # noqa: E402, F401
import kd_bert.jobs.teacher  # noqa: E402, F401


def run_child(request: dict) -> int:
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
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
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                status = run_child(request)
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
