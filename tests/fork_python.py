"""`python ARGS` for a script a test runs (its PYTHON: the `python` of tests.main_forks.MainForks): main.py runs
forked from the test process's server, everything else (or main.py in an environment the server cannot give) in
a fresh interpreter. Signals this process receives (a script's `timeout -s TERM`, Ctrl-C) go on to the child, and
it exits with the child's exit code, or by the child's signal. SIGKILL cannot be passed on: a test that kills its
run starts a fresh process.

Usage (from MainForks.python): python -S tests/fork_python.py SERVER_FOLDER ARGS... Imports nothing beyond the
standard library: it starts in a few milliseconds.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.main_forks import request  # noqa: E402

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def main() -> None:
    folder, args = sys.argv[1], sys.argv[2:]
    child, pending = [], []

    def forward(signum: int, _frame: object) -> None:
        if child:
            os.kill(child[0], signum)
        else:  # before the child runs: passed on as it starts
            pending.append(signum)

    def started(pid: int) -> None:
        child.append(pid)
        for signum in pending:
            os.kill(pid, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    code = request(folder, args, os.getcwd(), dict(os.environ), 24 * 3600, (0, 1, 2), on_pid=started)
    if code is None:
        os.execv(sys.executable, [sys.executable, *args])
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == '__main__':
    main()
