"""The preloader: local jobs start from a process that has already imported torch, timm and the library.

Why: on a laptop or a small workstation the default study's jobs are short, and each fresh Python
process spends seconds importing torch and timm (3.5-4.5 s on the 2-core CPU machines this project is
tested on) before its first useful computation; that was a third of the study's summed job time
(``benchmarks/bench_startup.py``). Snakemake starts one process per job and has no way to keep imported
state between jobs, and no library we use offers a fork server for scripts (Python's
``multiprocessing.forkserver`` serves functions of one parent, not unrelated processes), so this module
is written by hand. It is the pattern of preforking preloaders such as Ruby's Spring or the JVM's
Nailgun, specialised to Snakemake's ``script:`` jobs:

- :func:`start` (called by the Snakefile's ``onstart``, local execution only) launches one *server*
  process per Snakemake run. It imports every module the workflow's scripts import, checks that it is
  still single-threaded (safe to fork), and then listens on a Unix socket whose path it hands to jobs in
  the environment variable :data:`SOCKET_ENV`.
- A job's script calls :func:`delegate` first thing (``_common.start``). It connects, passes its argv,
  working directory, environment, umask, start time and its stdin/stdout/stderr file descriptors, and the
  server forks a *child* that runs the same script file with those. The job process waits, forwards
  SIGTERM/SIGINT/SIGHUP to the child and exits with the child's status; the child ends itself when the
  job process goes away (the connection closes), so Snakemake's kill still ends the work.
- Anything the server cannot vouch for runs the ordinary way (the job process goes on by itself,
  :func:`delegate` returns None and says why): another interpreter or ``sys.prefix`` (``--use-conda``,
  containers), another ``PYTHONPATH``, a thread count other than the one the server was loaded with, a
  source file of the library or the scripts edited since the server started, no server (SLURM and
  other remote executors; ``preload: false`` in the config; ``--no-hooks``), or any error on the way.

A child runs exactly the code a fresh process would, from the same files, with the same seeds, thread
counts and environment, and starts with fresh per-process state where the server's would leak
(:func:`_fresh_process_state`: temporary folder, numpy's and torch's global random streams);
``tests/test_preload.py`` checks these, the fallbacks, the signal and exit-status paths, and that study
outputs are byte-identical with and without it. Known difference: Snakemake's
``benchmark:`` file measures the job process's own process tree, so its ``cpu_time`` and ``max_rss`` miss
a preloaded child's work (its wall time ``s`` is right); the job's log line ``timing:`` gives the child's
CPU time and peak memory (``cpu_s``, ``max_rss_mb``). Set ``preload: false`` for benchmark files that
cover everything.

This module imports nothing heavy: the job process uses it before it knows whether it will import
torch at all.
"""

from __future__ import annotations

import ast
import gc
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

#: environment variable holding the server's socket path (set in the Snakemake process, inherited by jobs)
SOCKET_ENV = "SHORTCUT_PSD_PRELOAD"
#: thread-count variables Snakemake sets for every job (``threads``); the server is loaded with these
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: variables that decide which code a job imports: they must match the server's
IMPORT_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONSAFEPATH")
#: what Snakemake's preamble of every ``script:`` job imports before the script's own code
SNAKEMAKE_PREAMBLE = ("pickle", "snakemake.logging", "snakemake.iocontainers")
_HEADER_LEN = 16  # fixed-width decimal length of the request's JSON, sent with the file descriptors
_CONNECT_TIMEOUT_S = 5.0
_REPLY_TIMEOUT_S = 30.0


class _Child:
    """State of a forked child (None in every other process): its connection and the job's start time."""

    conn: socket.socket | None = None
    client_start: float | None = None


CHILD = _Child()
#: why the last :func:`delegate` ran the job here (for the job's log), or None
LAST_REFUSAL: list[str] = []


# ---------------------------------------------------------------------------------------------------- job


def in_child() -> bool:
    """True in a child forked by the server (the job's script runs there)."""
    return CHILD.conn is not None


def client_start_time() -> float | None:
    """Wall-clock start of the job process a child serves (its set-up counts from there), else None."""
    return CHILD.client_start


def delegate(start_time: float | None = None) -> int | None:
    """Run this process's script in a child of the preloader and return the child's exit status.

    None means "run it here": no server, or the server declined (the reason is in :data:`LAST_REFUSAL`).
    Call it before importing anything heavy; on a status, the caller exits with it at once."""
    LAST_REFUSAL.clear()
    path = os.environ.get(SOCKET_ENV)
    if not path or in_child():
        return None
    if not os.path.isfile(sys.argv[0]):  # the child runs the script file again from its first line
        LAST_REFUSAL.append(f"{sys.argv[0]!r} is not a script file")
        return None
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_CONNECT_TIMEOUT_S)
        sock.connect(path)
    except OSError as exc:
        LAST_REFUSAL.append(f"no preloader at {path} ({exc.strerror or exc})")
        return None
    request = {
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": _umask(),
        "executable": os.path.realpath(sys.executable),
        "prefix": sys.prefix,
        "version": list(sys.version_info[:3]),
        "start": start_time,
    }
    try:
        body = json.dumps(request).encode()
        socket.send_fds(sock, [f"{len(body):{_HEADER_LEN}d}".encode()], [0, 1, 2])
        sock.sendall(body)
        sock.settimeout(_REPLY_TIMEOUT_S)
        lines = sock.makefile("rb")  # buffered: "ok" and "exit" of a quick job can arrive in one packet
        reply = _readline(lines)
    except OSError as exc:
        sock.close()
        LAST_REFUSAL.append(f"the preloader did not answer ({exc})")
        return None
    if not reply.startswith("ok "):
        sock.close()
        LAST_REFUSAL.append(reply[3:] if reply.startswith("no ") else f"unexpected reply {reply!r}")
        return None
    child = int(reply.split()[1])
    _forward_signals(child)
    sock.settimeout(None)
    try:
        last = _readline(lines)
    except OSError:
        last = ""
    if last.startswith("exit "):
        return int(last.split()[1])
    sys.stderr.write(f"shortcut-psd preloader: the job's process {child} ended without an exit status\n")
    return 1


def _forward_signals(child: int) -> None:
    def forward(signum, _frame) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)


def exit_now(code: int) -> None:
    """End this process with ``code`` without the interpreter's tear-down; a child first tells its job
    process the status (which that process exits with)."""
    if CHILD.conn is not None:
        try:
            CHILD.conn.sendall(f"exit {int(code)}\n".encode())
        except OSError:
            pass
    os._exit(int(code))


def usage() -> tuple[float, float]:
    """CPU seconds (user + system) and peak resident memory (MiB) of this process so far.

    In a child the CPU time counts from the fork (Linux resets it), so it is the job's own; the peak
    memory includes the pages it shares with the server, as a fresh process's includes its own imports."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _readline(lines) -> str:
    """One line from the server or the child (empty once the connection has closed)."""
    return lines.readline().decode(errors="replace").strip()


# ------------------------------------------------------------------------------------------ Snakemake side


class Handle:
    """A started server: its process and its socket's folder."""

    def __init__(self, proc: subprocess.Popen, folder: str, log: Path) -> None:
        self.proc, self.folder, self.log = proc, folder, log

    @property
    def socket(self) -> str:
        return os.path.join(self.folder, "s")


_STARTED: list[Handle] = []


def start(scripts: Path, src: Path, log: Path, *, threads: int) -> Handle | None:
    """Launch the server for a local Snakemake run; set :data:`SOCKET_ENV` for the jobs it starts.

    ``scripts``: the workflow's scripts folder (whose imports it preloads); ``src``: the library's
    source folder; ``log``: the server's log file. Returns None (jobs run the ordinary way) off Linux or
    when jobs will run with more than one thread (BLAS libraries start their thread pools at import, and a
    process with threads cannot be forked safely)."""
    if not sys.platform.startswith("linux") or threads != 1 or _STARTED:
        return None
    # mkdtemp's folder is private (mode 0700): only this user can reach the socket, and so ask the server
    # to run a script; short, because a socket's path has at most ~100 bytes
    folder = tempfile.mkdtemp(prefix="shortcut-psd-preload-")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop(SOCKET_ENV, None)
    env.update({name: str(threads) for name in THREAD_ENV})  # what Snakemake gives a job of `threads`
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-c", _SERVE, os.path.join(folder, "s"), str(scripts), str(src)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,  # PYTHONPATH as the jobs have it; main() puts src first on sys.path, as _common does
            start_new_session=True,  # a terminal's Ctrl-C reaches Snakemake, which stops the server
        )
    handle = Handle(proc, folder, log)
    _STARTED.append(handle)
    os.environ[SOCKET_ENV] = handle.socket
    return handle


def start_for_workflow(workflow, config: dict) -> Handle | None:
    """The Snakefile's ``onstart``: start the server when this Snakemake process runs the jobs itself
    (local executor, main process) with the workflow's own Python (no conda, containers or environment
    modules), ``preload`` is on and jobs use one thread; otherwise None."""
    from shortcut_psd.layout import Layout

    mode = getattr(getattr(workflow, "exec_mode", None), "name", "DEFAULT")
    deployment = getattr(getattr(workflow, "deployment_settings", None), "deployment_method", ())
    if (
        not config.get("preload", True)
        or not getattr(workflow, "local_exec", False)
        or mode != "DEFAULT"
        or deployment
        or getattr(workflow, "touch", False)
    ):
        return None
    base = Path(workflow.basedir)
    return start(
        base / "workflow" / "scripts",
        base / "src",
        Layout(config["results"]).preload_log(),
        threads=int(config.get("threads", 1)),
    )


def stop() -> None:
    """Stop the server this process started (if any); running children finish their jobs."""
    os.environ.pop(SOCKET_ENV, None)
    while _STARTED:
        handle = _STARTED.pop()
        if handle.proc.poll() is None:
            handle.proc.terminate()
            try:
                handle.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                handle.proc.kill()
                handle.proc.wait()
        shutil.rmtree(handle.folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ server


def script_imports(scripts: Path) -> list[str]:
    """Every module the workflow's scripts import (top-level or inside functions), sorted; the server
    preloads these, so a new script's imports are preloaded without a second list to keep."""
    names: set[str] = set()
    for path in sorted(scripts.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                # `from shortcut_psd import study` imports the submodule shortcut_psd.study
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return sorted(names)


def _preload(names: Iterable[str]) -> list[str]:
    import importlib
    import importlib.util

    loaded = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except (ImportError, ValueError):  # `shortcut_psd.study.X` where X is a name, not a module
            continue
        importlib.import_module(name)
        loaded.append(name)
    return loaded


def _thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def _watched_files(roots: Iterable[Path]) -> dict[str, int]:
    """Modification times (ns) of every ``.py`` file under ``roots`` (the library and the scripts): the
    loaded modules among them, and any a job may import later."""
    return {str(path): path.stat().st_mtime_ns for root in roots for path in Path(root).rglob("*.py")}


class Server:
    """The preloader's server (started by :func:`start`; see :data:`_SERVE`)."""

    def __init__(self, path: str, scripts: Path, src: Path) -> None:
        self.path, self.scripts, self.src = path, scripts, src
        self.ppid = os.getppid()
        self.env = {name: os.environ.get(name) for name in THREAD_ENV + IMPORT_ENV}
        self.executable = os.path.realpath(sys.executable)
        self.children: set[int] = set()
        self.stopping = False
        self.listener: socket.socket | None = None
        self.files: dict[str, int] = {}

    def log(self, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} preloader {os.getpid()}: {message}", flush=True)

    def load(self) -> bool:
        t0 = time.perf_counter()
        sys.path.append(str(self.scripts))  # where Snakemake's preamble puts it: after everything else
        loaded = _preload(SNAKEMAKE_PREAMBLE + tuple(script_imports(self.scripts)))
        threads = _thread_count()
        self.files = _watched_files([self.src, self.scripts])
        self.log(f"imported {len(loaded)} modules in {time.perf_counter() - t0:.2f} s: {' '.join(loaded)}")
        if threads != 1:
            self.log(f"not serving: {threads} threads after the imports, and forking them is unsafe")
            return False
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():  # a forked child cannot use its parent's CUDA
            self.log("not serving: CUDA was initialised by the imports, and a forked child cannot use it")
            return False
        gc.collect()
        gc.freeze()  # children touch fewer shared pages (copy-on-write) when the collector skips these
        return True

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = self.path + ".new"
        listener.bind(staging)
        listener.listen(64)
        os.replace(staging, self.path)  # jobs see the socket only once the server is ready
        self.listener = listener
        self.log(f"serving at {self.path}")
        while not self.stopping:
            if os.getppid() != self.ppid:
                self.log("Snakemake has ended: stopping")
                break
            self._reap()
            try:
                ready, _, _ = select.select([listener], [], [], 1.0)
            except InterruptedError:
                continue
            if ready:
                conn, _ = listener.accept()
                self._handle(conn)
        self._close()

    def _on_term(self, _signum, _frame) -> None:
        self.stopping = True

    def _close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._reap()
        self.log(f"stopped; {len(self.children)} children still running their jobs")

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def refusal(self, request: dict) -> str | None:
        """Why this request must run the ordinary way, or None."""
        if request.get("executable") != self.executable or request.get("prefix") != sys.prefix:
            return f"another Python ({request.get('executable')}; the preloader runs {self.executable})"
        if request.get("version") != list(sys.version_info[:3]):
            return "another Python version"
        env = request.get("env", {})
        for name, value in self.env.items():
            if env.get(name) != value:
                return f"the job's {name}={env.get(name)} (the preloader was loaded with {value})"
        changed = [p for p, t in self.files.items() if _mtime(p) != t]
        if changed:
            return f"source changed since the preloader started: {changed[0]}"
        return None

    def _handle(self, conn: socket.socket) -> None:
        fds: list[int] = []
        try:
            conn.settimeout(_REPLY_TIMEOUT_S)
            head, fds, _, _ = socket.recv_fds(conn, _HEADER_LEN, 3)
            size = int(head.decode())
            body = b""
            while len(body) < size:
                part = conn.recv(size - len(body))
                if not part:
                    raise ConnectionError("request cut short")
                body += part
            request = json.loads(body)
            if len(fds) != 3:
                raise ConnectionError(f"{len(fds)} file descriptors, expected 3")
            reason = self.refusal(request)
            if reason is not None:
                conn.sendall(f"no {reason}\n".encode())
                self.log(f"declined {request['argv'][0]}: {reason}")
                if reason.startswith("source changed"):
                    self.stopping = True  # every later job would be declined too
                return
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                try:
                    self._child(conn, fds, request)
                finally:
                    os._exit(70)
            self.children.add(pid)
            self.log(f"forked {pid} for {request['argv'][0]}")
        except (OSError, ValueError, ConnectionError) as exc:
            self.log(f"bad request: {exc}")
            try:
                conn.sendall(f"no bad request ({exc})\n".encode())
            except OSError:
                pass
        finally:
            for fd in fds:
                os.close(fd)
            conn.close()

    def _child(self, conn: socket.socket, fds: list[int], request: dict) -> None:
        import runpy

        assert self.listener is not None
        self.listener.close()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(int(request["umask"]))
        _fresh_process_state()
        CHILD.conn, CHILD.client_start = conn, request.get("start")
        conn.settimeout(None)
        conn.sendall(f"ok {os.getpid()}\n".encode())
        threading.Thread(target=_end_with, args=(conn,), daemon=True).start()
        sys.argv = list(request["argv"])
        code = 0
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        exit_now(code)


def _fresh_process_state() -> None:
    """In a child, what a fresh process would not have inherited from the server: ``tempfile``'s cached
    folder (recomputed from the job's TMPDIR, which Snakemake sets per job), and numpy's and torch's
    global random states (entropy-seeded in a fresh process; children must not share one stream).
    Python's ``random`` reseeds itself after a fork. The study seeds every generator it uses explicitly,
    so none of these reaches a result; they keep a child's behaviour that of a fresh process. What cannot
    be redone after start: children share the server's string-hash seed (``PYTHONHASHSEED``), so set
    order of strings is the same in every child, where fresh processes differ."""
    tempfile.tempdir = None
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()  # torch, too, seeds its default generator from entropy in a fresh process


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _end_with(conn: socket.socket) -> None:
    """In a child: wait for the job process to go away (its end of the connection closes) and end too.

    The job process never writes after its request, so any return from ``recv`` means it is gone."""
    try:
        conn.recv(1)
    except OSError:
        pass
    os._exit(143)


def main(argv: list[str]) -> int:
    path, scripts, src = argv
    server = Server(path, Path(scripts), Path(src))
    if server.load():
        server.serve()
    return 0


#: the server's command (``python -P -c _SERVE SOCKET SCRIPTS SRC``): the library comes from SRC, first on
#: the path, as every job's ``_common`` puts it; ``-P`` keeps the working directory off the path
_SERVE = "import sys; sys.path.insert(0, sys.argv[3]); from shortcut_psd.preload import main; sys.exit(main(sys.argv[1:]))"
