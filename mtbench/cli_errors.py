"""Command-line errors as one clear line (exit code 2); ``--debug`` shows the traceback.

A user who mistypes an experiment name or points at a truncated JPEG needs the message, not forty
lines of traceback; a developer needs the traceback. :func:`friendly_errors` wraps a CLI
``main(argv) -> int``:

* any exception (and ``SystemExit("message")``) prints ``mtbench: error: <message>`` on stderr,
  on one line, and returns 2 (argparse's own usage errors already exit 2 and pass through);
* ``--debug`` anywhere in ``argv`` is removed from ``argv`` and lets the exception propagate with
  its full traceback;
* Ctrl-C returns 130 with one line.

Example::

    @friendly_errors
    def main(argv=None) -> int:
        ...

    main(["run", "no_such_experiment"])          # prints one line, returns 2
    main(["run", "no_such_experiment", "--debug"])   # raises, full traceback
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, Sequence

__all__ = ["friendly_errors", "error_line", "DEBUG_FLAG", "EXIT_ERROR"]

DEBUG_FLAG = "--debug"
EXIT_ERROR = 2


def error_line(err: BaseException, prog: str = "mtbench") -> str:
    """``"<prog>: error: <message>"`` on one line (the message's lines joined by ``" | "``); the
    exception's type is named unless it is a plain ``SystemExit``/``ValueError``/``RuntimeError``
    message whose text already says what went wrong."""
    msg = str(err.code if isinstance(err, SystemExit) else err).strip()
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        msg = err.args[0]  # str(KeyError) adds quotes around the message
    msg = " | ".join(line.strip() for line in msg.splitlines() if line.strip()) or type(err).__name__
    if not isinstance(err, (SystemExit, ValueError, RuntimeError)):
        msg = f"{type(err).__name__}: {msg}"
    return f"{prog}: error: {msg}"


def friendly_errors(main: Callable[[Sequence[str] | None], int] | None = None, *, prog: str = "mtbench"):
    """Decorate a CLI ``main(argv) -> int`` so errors are one line and exit code 2 (see module doc)."""

    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(argv: Sequence[str] | None = None) -> int:
            argv = list(sys.argv[1:] if argv is None else argv)
            debug = DEBUG_FLAG in argv
            argv = [a for a in argv if a != DEBUG_FLAG]
            if debug:
                return fn(argv)
            try:
                return fn(argv)
            except SystemExit as err:
                if err.code is None or isinstance(err.code, int):
                    raise  # argparse (--help, usage errors) and explicit exit codes
                print(error_line(err, prog), file=sys.stderr)
                return EXIT_ERROR
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return 130
            except Exception as err:  # noqa: BLE001 - the point: every error becomes one line
                print(error_line(err, prog) + f"  (run with {DEBUG_FLAG} for the traceback)", file=sys.stderr)
                return EXIT_ERROR

        return wrapper

    return wrap(main) if main is not None else wrap
