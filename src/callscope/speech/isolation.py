"""Running native decoders on untrusted files in a process of their own.

FFmpeg, under PyAV, is native code: a hostile file can crash it (a segmentation fault ends the
whole process, web server and worker included), make it run for long or make it allocate
gigabytes. `run(function, *args)` calls FUNCTION in a fresh Python process limited in memory
and time and brings back its result or its error; a crash, a timeout or exhausted memory is a
refusal of the file, and the calling process carries on. At most one fewer decoder runs at a
time than there are cores, so that many uploads at once still leave the server a core to
answer everyone else with. (They keep the normal priority: at a lower one, a worker
transcribing on every core starved them, and uploads waited behind it.)
"""

from __future__ import annotations

import importlib
import os
import pickle
import resource
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from callscope import errors

T = TypeVar("T")
MEMORY_BYTES = 3 * 1024**3  # address space of the child; a 12-hour call streams within it
TIMEOUT_S = 900.0
# decoding needs no parallel numerics; thread pools reserve address space the limit counts
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 1) - 1))


class DecoderFailed(errors.Refused):
    """The decoder crashed, ran out of time or memory on a file: the file is refused."""


def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """FUNCTION(*ARGS, **KWARGS) in a child process limited to MEMORY_BYTES and TIMEOUT_S, once
    one of this process's slots is free. FUNCTION must be a module-level function; its
    arguments and result must pickle."""
    with _SLOTS:
        return run_now(function, *args, **kwargs)


def run_now(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """As `run`, without waiting for a slot: the worker's decoding of the call it processes
    (one at a time) does not queue behind uploads to the same server."""
    request = pickle.dumps((function.__module__, function.__qualname__, args, kwargs))
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__],
            input=request,
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
            env={**os.environ, **ONE_THREAD},
        )
    except subprocess.TimeoutExpired as exc:
        raise DecoderFailed(f"decoding the audio took longer than {TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0 or not done.stdout:
        raise DecoderFailed(
            f"the audio decoder failed on this file (exit status {done.returncode}); "
            "it cannot be accepted"
        )
    try:
        ok, value = pickle.loads(done.stdout)
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DecoderFailed("the audio decoder gave no readable answer on this file") from exc
    if not ok:
        raise value
    return value


def serve() -> None:
    """The child: read the call from stdin, answer (ok, result or error) on stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    module, name, args, kwargs = pickle.load(sys.stdin.buffer)
    try:
        result = (True, getattr(importlib.import_module(module), name)(*args, **kwargs))
    except MemoryError:
        result = (False, DecoderFailed("decoding the audio needs more memory than a call can"))
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
        result = (False, exc)
    sys.stdout.buffer.write(pickle.dumps(result))


if __name__ == "__main__":
    # through the module's own name, so that its errors unpickle in the caller
    from callscope.speech.isolation import serve as serve_as_module

    serve_as_module()
