"""How the sample-quality commands report: a result line on stdout, or one error line and exit 2."""

import sys
from collections.abc import Callable

from gen_runtime.errors import UserError

EXIT_USER_ERROR = 2  # as main.py


def run_command(body: Callable[[], str]) -> None:
    """Runs `body` and prints what it returns; a UserError becomes one line on stderr and exit 2."""
    try:
        message = body()
    except UserError as e:
        print(f'error: {" ".join(str(e).split())}', file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    print(message)
