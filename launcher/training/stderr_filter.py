"""Ray's C++ start-up chatter kept off the user's terminal: this process's stderr (file
descriptor 2, where Ray's C++ core worker logs) passes through a small filter process
that drops known harmless lines and forwards everything else unchanged.

What it drops: the `core_worker.cc` warning that an actor's constructor arguments sit
in the object store (printed once per env runner by every RLlib run), absl's "log
messages before InitializeLog" banner and its `I0000` lines, and the GCS connection
retries of a driver waiting for a cluster (replaced by one line, once). Python's own
output (errors, tracebacks, notices) is untouched: it goes through unchanged.

The filter is a separate process, not a thread, so that what a dying driver writes last
(a C++ fatal error's stack, a traceback) still reaches the terminal. It ends when every
writer of the pipe is gone; `uninstall` (also at exit) puts the original stderr back and
waits for it to flush. LAUNCHER_RAW_STDERR=1 leaves stderr alone, for debugging Ray.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

RAW_ENV = "LAUNCHER_RAW_STDERR"

# (pattern, the one line printed instead the first time it matches; "" for none)
NOISE = (
    (r"core_worker\.cc:\d+: Actor with class name: .* has constructor arguments in the object "
     r"store", ""),
    (r"^WARNING: All log messages before absl::InitializeLog\(\) is called", ""),
    (r"^I0000 \d", ""),
    (r"(gcs_client\.cc|rpc_client\.h):\d+: Failed to (connect to|get cluster ID from) "
     r"(GCS|the observability pubsub)",
     "note: the Ray cluster does not answer yet; Ray keeps retrying (its retry lines are hidden)"),
)

# Runs in `python -I -S -c`: stdin is the pipe, stdout the original stderr.
_PROGRAM = r"""
import os, re, sys
rules = [(re.compile(sys.argv[i].encode()), sys.argv[i + 1].encode())
         for i in range(1, len(sys.argv), 2)]
said = set()
def out(data):
    while data:
        data = data[os.write(1, data):]
buf = b""
while True:
    try:
        chunk = os.read(0, 65536)
    except InterruptedError:
        continue
    except KeyboardInterrupt:
        continue
    if not chunk:
        break
    buf += chunk
    *lines, buf = buf.split(b"\n")
    for line in lines:
        hit = next((i for i, (pattern, _) in enumerate(rules) if pattern.search(line)), None)
        if hit is None:
            out(line + b"\n")
        elif rules[hit][1] and hit not in said:
            said.add(hit)
            out(rules[hit][1] + b"\n")
    if buf and not buf.startswith(b"["):  # a partial line that is not a C++ log line
        out(buf)
        buf = b""
out(buf)
"""

_installed: dict = {}


def install() -> bool:
    """Route fd 2 through the filter (once per process); False when left alone."""
    if _installed or os.environ.get(RAW_ENV) == "1":
        return bool(_installed)
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        args = [sys.executable, "-I", "-S", "-c", _PROGRAM]
        for pattern, instead in NOISE:
            args += [pattern, instead]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=saved, close_fds=True,
                                start_new_session=True)  # Ctrl-C reaches the driver only
    except OSError:
        return False
    os.dup2(proc.stdin.fileno(), 2)
    proc.stdin.close()
    _installed.update(proc=proc, saved=saved)
    atexit.register(uninstall)
    return True


def uninstall() -> None:
    """Put the original stderr back and let the filter flush what it holds."""
    if not _installed:
        return
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(_installed["saved"], 2)
    os.close(_installed["saved"])
    try:
        _installed["proc"].wait(timeout=2)
    except subprocess.TimeoutExpired:  # a child process still holds the pipe: it goes on alone
        pass
    _installed.clear()
