"""`python main.py ARGS` runs forked from one server process that has already imported what main.py imports.

Importing jax, flax, orbax and the families took about 3 s of CPU in every main.py process the tests start: most of
a run refused before any work, about half of a tiny training run (2026-12-06: 151 main.py processes in a CI run, 391
s of CPU). Each test process (xdist worker) starts one server at its first main.py run (tests.conftest.main_forks);
tests.conftest.run_python sends it its main.py runs, and a script a test runs reaches it through `python`, an
executable in the server's folder to use as the script's PYTHON (tests/fork_python.py).

The server imports those modules and nothing else: it never initialises a jax backend and runs one thread (a fork
after either is unsafe), and never imports main.py (whose flags each run defines afresh). For every request it forks
a child that runs main.py as `python main.py ARGS` would: `__main__` from the file, the request's arguments,
environment and working folder (XLA_FLAGS, read when the child's backend starts, included), its standard input,
output and error (the client's own file descriptors), and an ordinary interpreter exit with main.py's exit code (so
whatever Python prints at shutdown is there, as in a fresh process); a child still running after the request's
timeout is ended by SIGALRM. A request that would not run as in a fresh process (not main.py; an environment that
differs in what the interpreter and the preloaded modules read at their start) is answered `fresh`: the client
starts a new interpreter instead.

Protocol, over the UNIX socket `socket` in the server's folder, one connection per run: the client sends one JSON
line ({"argv", "cwd", "env", "timeout"}) with three file descriptors (standard input, output, error); the server
answers one JSON line, {"fresh": true} or {"pid"} (the child, for the client to pass signals on), then, when the
child has exited, {"returncode"} (negative: the signal that ended it).
"""

import importlib
import io
import json
import os
import runpy
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

# What main.py and the families' modes import before their first check.
PRELOAD = ('numpy', 'jax', 'jax.numpy', 'flax.linen', 'optax', 'orbax.checkpoint', 'ml_collections', 'absl.app',
           'ml_collections.config_flags', 'gen_runtime.modes', 'sde_jax.modes', 'ldm_jax.modes', 'zsl_jax.modes')
# Environment variables read when the interpreter or an imported module starts (jax reads its JAX_* settings at
# import, numpy its thread counts): a request whose values differ from the server's runs as a fresh process.
# Two exceptions: PYTHONUNBUFFERED (the child makes its standard output and error unbuffered itself) and PYTHON
# (the scripts' choice of interpreter, which Python does not read).
AT_IMPORT = ('JAX_', 'PYTHON', 'OMP_', 'OPENBLAS_', 'MKL_', 'TF_', 'LD_')
UNBUFFERED = 'PYTHONUNBUFFERED'
NOT_AT_IMPORT = (UNBUFFERED, 'PYTHON')
MESSAGE_BYTES = 1 << 20


def forkable(args: list[str], env: dict[str, str], server_env: dict[str, str]) -> bool:
    """Whether `python ARGS` in `env` runs in a child of a server started in `server_env` as it would in a fresh
    process: main.py, with what the interpreter and the preloaded modules read at their start as the server had it."""
    keys = {k for k in {*env, *server_env} if k.startswith(AT_IMPORT) and k not in NOT_AT_IMPORT}
    return bool(args) and args[0] == 'main.py' and all(env.get(k) == server_env.get(k) for k in keys)


def _run_child(request: dict, fds: list[int], set_at_import: dict[str, str]) -> int:
    """In the forked child: main.py with the request's arguments, environment (and what the preloaded modules
    set in the environment, `set_at_import`, as importing them does) and standard streams; returns its exit
    code."""
    signal.alarm(max(1, int(request['timeout'])))
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request['env'])
    tempfile.tempdir = None  # found again from TMPDIR at its first use
    for name, value in set_at_import.items():
        os.environ.setdefault(name, value)
    # What importing gen_runtime does to XLA_FLAGS in a fresh process (gen_runtime/__init__.py: the one XLA flag
    # the library sets, read when the child's backend starts), from the request's XLA_FLAGS.
    from gen_runtime.xla_cpu import prefer_eigen_convolutions

    prefer_eigen_convolutions()
    if os.environ.get(UNBUFFERED):  # as `python -u` makes them: no buffer below the text layer
        sys.stdout, sys.stderr = (io.TextIOWrapper(io.FileIO(fd, 'w', closefd=False), encoding=stream.encoding,
                                                   errors=stream.errors, write_through=True)
                                  for fd, stream in ((1, sys.stdout), (2, sys.stderr)))
    os.chdir(request['cwd'])
    sys.argv = list(request['argv'])
    try:
        runpy.run_path(sys.argv[0], run_name='__main__')
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    return 0


def _reply(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall((json.dumps(message) + '\n').encode())
    except OSError:  # the client has gone (killed): its child still runs to its end
        pass


def serve(folder: str) -> None:
    """The server's loop: preload, then one forked child per connection to folder/socket until stdin closes."""
    before = dict(os.environ)
    for name in PRELOAD:
        importlib.import_module(name)
    # What the imports added to the environment, besides XLA_FLAGS (scikit-learn's KMP_DUPLICATE_LIB_OK, for Intel's
    # OpenMP): each child sets it as they did, where its request has no value of its own.
    changed = {k for k in {*before, *os.environ} if before.get(k) != os.environ.get(k)} - {'XLA_FLAGS'}
    assert all(k not in before for k in changed), f'the preloaded modules changed {changed}: a child cannot undo it'
    set_at_import = {k: os.environ[k] for k in changed}
    from jax._src import xla_bridge

    assert not xla_bridge._backends, 'a preloaded module initialised a jax backend: forking would be unsafe'
    threads = len(os.listdir('/proc/self/task'))
    assert threads == 1, f'the server runs {threads} threads after its imports: forking would be unsafe'
    server_env = dict(os.environ)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.path.join(folder, 'socket'))
    listener.listen(16)
    wake_read, wake_write = os.pipe()  # SIGCHLD wakes the loop: a child has ended
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    print('ready', flush=True)
    children: dict[int, socket.socket] = {}
    while True:
        readable, _, _ = select.select([listener, sys.stdin, wake_read], [], [])
        if sys.stdin in readable and not sys.stdin.readline():
            break
        if wake_read in readable:
            os.read(wake_read, 4096)
            while children:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if not pid:
                    break
                conn = children.pop(pid)
                _reply(conn, {'returncode': os.waitstatus_to_exitcode(status)})
                conn.close()
        if listener in readable:
            conn, _ = listener.accept()
            data, fds, _, _ = socket.recv_fds(conn, MESSAGE_BYTES, 3)
            while data and not data.endswith(b'\n'):  # the rest of a long request
                data += conn.recv(MESSAGE_BYTES)
            asked = json.loads(data)
            if len(fds) != 3 or not forkable(asked['argv'], asked['env'], server_env):
                _reply(conn, {'fresh': True})
                for fd in fds:
                    os.close(fd)
                conn.close()
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.set_wakeup_fd(-1)
                for held in (listener, conn, *children.values()):
                    held.close()
                os.close(wake_read)
                os.close(wake_write)
                sys.exit(_run_child(asked, fds, set_at_import))  # the child exits as a fresh `python main.py` would
            for fd in fds:
                os.close(fd)
            children[pid] = conn
            _reply(conn, {'pid': pid})


def request(folder: str, args: list[str], cwd: str, env: dict[str, str], timeout: float,
            fds: tuple[int, int, int], on_pid: Callable[[int], None] | None = None) -> int | None:
    """Runs `python ARGS` in the server of `folder` with standard input, output and error `fds`; returns the exit
    code, or None where the run must be a fresh process. `on_pid(pid)` is called once the child runs."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(os.path.join(folder, 'socket'))
        message = {'argv': list(args), 'cwd': cwd, 'env': env, 'timeout': timeout}
        socket.send_fds(conn, [(json.dumps(message) + '\n').encode()], list(fds))
        replies = conn.makefile('r')
        first = json.loads(replies.readline())
        if first.get('fresh'):
            return None
        if on_pid:
            on_pid(first['pid'])
        line = replies.readline()
        if not line:
            raise RuntimeError('the main.py fork server closed the connection before the run ended')
        return json.loads(line)['returncode']


class MainForks:
    """A server, started at its first run: `run(args, env)` like tests.conftest.run_python(args, check=False) for
    main.py, and `python`, an executable for scripts' PYTHON that runs their main.py here (tests/fork_python.py).
    `serves` needs no server: a test process whose runs all go elsewhere never starts one."""

    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.repo, self.env, self.folder = repo, dict(env), tempfile.mkdtemp(prefix='main-forks-')
        self.server: subprocess.Popen | None = None
        self._python = os.path.join(self.folder, 'python')
        with open(self._python, 'w') as f:
            f.write(f'#!/bin/sh\nexec {sys.executable} -S {repo / "tests" / "fork_python.py"} {self.folder} "$@"\n')
        os.chmod(self._python, 0o755)

    def _start(self) -> None:
        if self.server is not None:
            return
        self.server = subprocess.Popen([sys.executable, '-m', 'tests.main_forks', self.folder], cwd=self.repo,
                                       env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.server.stdout.readline().strip() != 'ready':
            raise RuntimeError(f'the main.py fork server did not start ({self.server.wait()})')

    @property
    def python(self) -> str:
        """The executable for a script's PYTHON (the server started)."""
        self._start()
        return self._python

    def serves(self, args: list[str], env: dict[str, str]) -> bool:
        """Whether `python ARGS` in `env` runs here as it would in a fresh process (`forkable`)."""
        return forkable(args, env, self.env)

    def run(self, args: list[str], env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """`python ARGS` (ARGS[0] is main.py) run by a forked child in `env` (default: the server's), from the
        repo; stdout and stderr as text."""
        env = dict(self.env if env is None else env)
        if not self.serves(args, env):
            raise ValueError(f'python {" ".join(args)} in that environment would not run as a fresh process')
        self._start()
        with open(os.devnull) as stdin, tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
            code = request(self.folder, args, str(self.repo), env, timeout, (stdin.fileno(), out.fileno(),
                                                                              err.fileno()))
            texts = []
            for f in (out, err):
                f.seek(0)
                texts.append(f.read())
        return subprocess.CompletedProcess(['python', *args], code, *texts)

    def close(self) -> None:
        if self.server is not None:
            self.server.stdin.close()
            self.server.wait(timeout=60)
        shutil.rmtree(self.folder)  # the executable, and the socket of a server that started

if __name__ == '__main__':
    serve(sys.argv[1])
