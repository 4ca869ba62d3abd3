"""`python main.py ARGS` runs forked from one server process that has already imported what main.py imports.

Importing jax, flax, orbax and the families took about 3 s of CPU in every main.py process the tests start: most of
a run refused before any work, about half of a tiny training run (2026-12-06: 151 main.py processes in a CI run, 391
s of CPU). tests.conftest.run_python sends its main.py runs to its test process's server (one per xdist worker,
started at the first run). The server imports those modules and nothing else: it never initialises a jax backend and
runs one thread (a fork after either is unsafe), and never imports main.py (whose flags each run defines afresh).
For every request it forks a child that runs main.py as `python main.py ARGS` would: `__main__` from the file, the
request's arguments, environment and working folder (XLA_FLAGS, read when the child's backend starts, included), its
own stdout and stderr files, and an ordinary interpreter exit with main.py's exit code (so whatever Python prints at
shutdown is in the files, as in a fresh process); a child still running after the request's timeout is ended by
SIGALRM.

Protocol: one JSON request per line on the server's stdin ({"argv", "cwd", "env", "stdout", "stderr",
"timeout"}: paths of the files to write), one JSON reply per line on its stdout ({"returncode"}).
"""

import importlib
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# What main.py and the families' modes import before their first check.
PRELOAD = ('numpy', 'jax', 'jax.numpy', 'flax.linen', 'optax', 'orbax.checkpoint', 'ml_collections', 'absl.app',
           'ml_collections.config_flags', 'gen_runtime.modes', 'sde_jax.modes', 'ldm_jax.modes', 'zsl_jax.modes')
# Environment variables read when the interpreter or an imported module starts (jax reads its JAX_* settings
# at import, numpy its thread counts): a request whose values differ from the server's runs as a fresh process.
AT_IMPORT = ('JAX_', 'PYTHON', 'OMP_', 'OPENBLAS_', 'MKL_', 'TF_', 'LD_', 'TMPDIR')


def _run_child(request: dict) -> int:
    """In the forked child: main.py with the request's arguments and environment; returns its exit code."""
    signal.alarm(max(1, int(request['timeout'])))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    for fd, path in ((1, request['stdout']), (2, request['stderr'])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, fd)
        os.close(out)
    os.environ.clear()
    os.environ.update(request['env'])
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


def serve() -> None:
    """The server's loop: preload, then one forked child per request line until stdin closes."""
    for name in PRELOAD:
        importlib.import_module(name)
    from jax._src import xla_bridge

    assert not xla_bridge._backends, 'a preloaded module initialised a jax backend: forking would be unsafe'
    threads = len(os.listdir('/proc/self/task'))
    assert threads == 1, f'the server runs {threads} threads after its imports: forking would be unsafe'
    replies = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sys.exit(_run_child(request))  # the child exits as a fresh `python main.py` would
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({'returncode': os.waitstatus_to_exitcode(status)}) + '\n')
        replies.flush()


class MainForks:
    """A running server, `run(args, env)` like tests.conftest.run_python(args, check=False) for main.py."""

    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.repo, self.env, self.folder = repo, dict(env), tempfile.mkdtemp(prefix='main-forks-')
        self.server = subprocess.Popen([sys.executable, '-m', 'tests.main_forks'], cwd=repo, env=self.env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.count = 0

    def serves(self, args: list[str], env: dict[str, str]) -> bool:
        """Whether `python ARGS` in `env` runs here as it would in a fresh process: main.py, with what the
        interpreter and the preloaded modules read at their start as the server had it."""
        keys = {k for k in {*env, *self.env} if k.startswith(AT_IMPORT)}
        return bool(args) and args[0] == 'main.py' and all(env.get(k) == self.env.get(k) for k in keys)

    def run(self, args: list[str], env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """`python ARGS` (ARGS[0] is main.py) run by a forked child in `env` (default: the server's); stdout and
        stderr as text."""
        self.count += 1
        out, err = (os.path.join(self.folder, f'{self.count}.{name}') for name in ('out', 'err'))
        request = {'argv': list(args), 'cwd': str(self.repo), 'env': dict(self.env if env is None else env),
                   'stdout': out, 'stderr': err, 'timeout': timeout}
        self.server.stdin.write(json.dumps(request) + '\n')
        self.server.stdin.flush()
        reply = self.server.stdout.readline()
        if not reply:
            raise RuntimeError(f'the main.py fork server exited ({self.server.wait()})')
        texts = []
        for path in (out, err):
            with open(path) as f:
                texts.append(f.read())
            os.remove(path)
        return subprocess.CompletedProcess(['python', *args], json.loads(reply)['returncode'], *texts)

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=60)
        os.rmdir(self.folder)


if __name__ == '__main__':
    serve()
