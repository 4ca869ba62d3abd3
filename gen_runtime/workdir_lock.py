"""One run per workdir at a time: an exclusive lock held for the run's whole life.

`hold_workdir(workdir)` takes `flock` on `<workdir>/.lock` (the kernel drops it when the holder dies, so a
lock left by a killed run is taken over without a word) and writes the holder's pid and host into it. A
second run on the same workdir is refused at once with a ConfigError naming that holder. The file is
removed on release; a run that opened it just before checks, once it holds the lock, that the file it
locked is still the one at the path, and retries otherwise.
"""

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator

from gen_runtime.errors import ConfigError

LOCK_FILE = '.lock'


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or 'another process'
    except OSError:
        return 'another process'


@contextlib.contextmanager
def hold_workdir(workdir: str) -> Iterator[None]:
    """Holds the workdir's lock inside the block; raises ConfigError if another run holds it."""
    path = os.path.join(workdir, LOCK_FILE)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f'--workdir {workdir} is in use by {_holder(path)}; wait for that run to end or use '
                              'another --workdir') from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the file was removed by the run that held it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f'pid {os.getpid()} on host {socket.gethostname()}\n'.encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
