"""shortcut_psd.preload: local jobs run as forks of a process that has imported the library.

A real server on a small scripts folder (only the standard library to preload, so it starts in about a
second) serves a job script the way ``_common.start`` does: what the job sees (argv, working directory,
environment, stdin/stdout/stderr), exit statuses, the ways it declines, signals, and the server's end.
The workflow test at the bottom runs real jobs with and without the preloader and compares their outputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO, SNAKEMAKE, load_config, write_config

from shortcut_psd import preload

SRC = REPO / "src"

JOB = textwrap.dedent(
    f"""
    import json, os, sys, tempfile, time
    import numpy.random  # preloaded by the server, so its global state exists before any fork
    import caches_tmp  # the server's imports ask for the temporary folder before any job's TMPDIR
    sys.path.insert(0, {str(SRC)!r})
    from shortcut_psd import preload
    status = preload.delegate(time.time())
    if status is not None:
        preload.exit_now(status)
    mode = sys.argv[1]
    line = sys.stdin.readline().strip() if mode == "stdin" else None
    print(json.dumps({{"child": preload.in_child(), "cwd": os.getcwd(), "x": os.environ.get("X"),
                      "refusal": preload.LAST_REFUSAL, "argv": sys.argv[1:], "stdin": line,
                      "tmp": tempfile.gettempdir(), "draw": numpy.random.random()}}), flush=True)
    if mode == "exit3":
        sys.exit(3)
    if mode == "raise":
        raise ValueError("boom in the job")
    if mode == "exit_now5":
        preload.exit_now(5)
    if mode == "sleep":
        with open(sys.argv[2] + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(sys.argv[2] + ".tmp", sys.argv[2])
        time.sleep(120)
    """
)


def _wait(predicate, timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture
def scripts(tmp_path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "job.py").write_text(JOB)
    (folder / "caches_tmp.py").write_text("import tempfile\n\ntempfile.gettempdir()\n")
    return folder


@pytest.fixture
def server(scripts, tmp_path, monkeypatch):
    """A started server (its handle); stopped afterwards. The test process's SOCKET_ENV is restored."""
    monkeypatch.delenv(preload.SOCKET_ENV, raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the preloader runs on Linux only")
    handle = preload.start(scripts, SRC, tmp_path / "preload.log", threads=1)
    assert handle is not None
    try:
        _wait(lambda: os.path.exists(handle.socket) or handle.proc.poll() is not None, what="the socket")
        assert handle.proc.poll() is None, (tmp_path / "preload.log").read_text()
        yield handle
    finally:
        preload.stop()


def job_env(**extra: str) -> dict:
    """The environment Snakemake gives a job of one thread (plus ``extra``)."""
    return {**os.environ, **{name: "1" for name in preload.THREAD_ENV}, **extra}


def run_job(
    scripts: Path, *args: str, cwd: Path, env: dict | None = None, **kw
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(scripts / "job.py"), *args],
        cwd=cwd,
        env=env or job_env(),
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def test_a_job_runs_in_a_child_with_its_own_cwd_env_argv_and_streams(server, scripts, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    tmp = tmp_path / "job-tmp"
    tmp.mkdir()
    proc = run_job(
        scripts, "stdin", "two", cwd=work, env=job_env(X="forty-two", TMPDIR=str(tmp)), input="hello\n"
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    seen.pop("draw")
    assert seen == {
        "child": True,
        "cwd": str(work),
        "x": "forty-two",
        "refusal": [],
        "argv": ["stdin", "two"],
        "stdin": "hello",
        "tmp": str(tmp),  # Snakemake sets TMPDIR per job; the server's cached folder is not used
    }
    assert "forked" in Path(server.log).read_text()


@pytest.mark.parametrize("mode, status", [("ok", 0), ("exit3", 3), ("raise", 1), ("exit_now5", 5)])
def test_the_job_process_exits_with_the_childs_status(server, scripts, tmp_path, mode, status):
    proc = run_job(scripts, mode, cwd=tmp_path)
    assert proc.returncode == status, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["child"] is True
    if mode == "raise":  # the traceback reaches the job's own stderr (Snakemake's log of the job)
        assert "ValueError: boom in the job" in proc.stderr


def test_children_do_not_share_the_servers_global_random_stream(server, scripts, tmp_path):
    draws = [json.loads(run_job(scripts, "ok", cwd=tmp_path).stdout)["draw"] for _ in range(2)]
    assert draws[0] != draws[1]


def test_children_do_not_share_the_servers_torch_generator(tmp_path, monkeypatch):
    folder = tmp_path / "torch_scripts"
    folder.mkdir()
    (folder / "job.py").write_text(
        f"import sys, time\nimport torch\nsys.path.insert(0, {str(SRC)!r})\nfrom shortcut_psd import preload\n"
        "status = preload.delegate(time.time())\nif status is not None:\n    preload.exit_now(status)\n"
        "print(preload.in_child(), torch.rand(1).item())\n"
    )
    monkeypatch.delenv(preload.SOCKET_ENV, raising=False)
    handle = preload.start(folder, SRC, tmp_path / "preload.log", threads=1)
    try:
        _wait(lambda: os.path.exists(handle.socket), what="the socket")
        outs = [run_job(folder, cwd=tmp_path).stdout.split() for _ in range(2)]
    finally:
        preload.stop()
    assert [o[0] for o in outs] == ["True", "True"]
    assert outs[0][1] != outs[1][1]


def test_a_job_with_another_thread_count_runs_the_ordinary_way(server, scripts, tmp_path):
    proc = run_job(scripts, "ok", cwd=tmp_path, env=job_env(OMP_NUM_THREADS="2"))
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["child"] is False
    assert "OMP_NUM_THREADS=2" in seen["refusal"][0]


def test_a_job_with_another_pythonpath_runs_the_ordinary_way(server, scripts, tmp_path):
    proc = run_job(scripts, "ok", cwd=tmp_path, env=job_env(PYTHONPATH=str(tmp_path)))
    seen = json.loads(proc.stdout)
    assert seen["child"] is False and "PYTHONPATH" in seen["refusal"][0]


def test_edited_source_is_never_served_stale(server, scripts, tmp_path):
    # a module the server loaded changes on disk: the job runs fresh, and the server stops serving
    job = scripts / "job.py"
    stat = job.stat()
    os.utime(job, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    proc = run_job(scripts, "ok", cwd=tmp_path)
    seen = json.loads(proc.stdout)
    assert seen["child"] is False and "source changed" in seen["refusal"][0]
    _wait(lambda: server.proc.poll() is not None, 10, "the server to stop")
    assert not os.path.exists(server.socket)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_ending_the_job_process_ends_its_child(server, scripts, tmp_path, sig):
    # SIGTERM and SIGINT are forwarded to the child; SIGKILL cannot be, and the child sees the
    # connection close instead
    pidfile = tmp_path / "child.pid"
    job = subprocess.Popen(
        [sys.executable, str(scripts / "job.py"), "sleep", str(pidfile)], cwd=tmp_path, env=job_env()
    )
    try:
        _wait(pidfile.exists, what="the child to start")
        child = int(pidfile.read_text())
        assert child != job.pid and _alive(child)
        job.send_signal(sig)
        assert job.wait(timeout=20) != 0
        _wait(lambda: not _alive(child), 10, "the child to end")
    finally:
        job.kill()


def test_a_quick_jobs_status_in_the_same_packet_as_its_start_is_read(tmp_path):
    """A child that ends at once can send "ok <pid>" and "exit <status>" in one packet: the job process
    must read both lines (it once read the packet as one reply and then took the closed connection for
    a child that died)."""
    import socket
    import threading

    path = str(tmp_path / "s")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def serve_once() -> None:
        conn, _ = listener.accept()
        head, fds, _, _ = socket.recv_fds(conn, 16, 3)
        body = b""
        while len(body) < int(head):
            body += conn.recv(65536)
        for fd in fds:
            os.close(fd)
        conn.sendall(b"ok 999999\nexit 7\n")
        conn.close()

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    job = tmp_path / "quick.py"
    job.write_text(
        f"import sys\nsys.path.insert(0, {str(SRC)!r})\nfrom shortcut_psd import preload\nprint(preload.delegate())\n"
    )
    proc = subprocess.run(
        [sys.executable, str(job)],
        env=job_env(**{preload.SOCKET_ENV: path}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    thread.join(10)
    listener.close()
    assert proc.stdout.strip() == "7", proc.stderr


def test_no_server_means_the_ordinary_way(scripts, tmp_path, monkeypatch):
    env = job_env(**{preload.SOCKET_ENV: str(tmp_path / "absent")})
    proc = run_job(scripts, "ok", cwd=tmp_path, env=env)
    seen = json.loads(proc.stdout)
    assert proc.returncode == 0 and seen["child"] is False
    assert "no preloader" in seen["refusal"][0]


def test_a_server_whose_imports_start_threads_does_not_serve(scripts, tmp_path, monkeypatch):
    # forking a process with other threads is unsafe (their locks are copied held): the server checks
    (scripts / "threaded.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    )
    (scripts / "uses_it.py").write_text("import threaded\n")
    monkeypatch.delenv(preload.SOCKET_ENV, raising=False)
    handle = preload.start(scripts, SRC, tmp_path / "preload.log", threads=1)
    try:
        assert handle.proc.wait(timeout=60) == 0
        assert "not serving: 2 threads" in (tmp_path / "preload.log").read_text()
        proc = run_job(scripts, "ok", cwd=tmp_path)
        assert json.loads(proc.stdout)["child"] is False
    finally:
        preload.stop()


def test_the_server_ends_with_the_snakemake_process_that_started_it(scripts, tmp_path):
    # the parent starts a server and dies without stopping it (Snakemake killed): the server notices
    parent = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(SRC)!r})
        from pathlib import Path
        from shortcut_psd import preload
        h = preload.start(Path({str(scripts)!r}), Path({str(SRC)!r}), Path({str(tmp_path / "p.log")!r}), threads=1)
        while not os.path.exists(h.socket):
            time.sleep(0.05)
        print(h.proc.pid, h.socket, flush=True)
        os._exit(0)
        """
    )
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=120)
    pid, sock = out.stdout.split()
    _wait(lambda: not _alive(int(pid)), 15, "the orphaned server to end")
    assert not os.path.exists(sock)
    assert "Snakemake has ended" in (tmp_path / "p.log").read_text()
    os.rmdir(os.path.dirname(sock))


def test_stop_removes_the_socket_folder_and_the_variable(server):
    folder = server.folder
    assert os.environ[preload.SOCKET_ENV] == server.socket
    preload.stop()
    assert preload.SOCKET_ENV not in os.environ
    assert not os.path.exists(folder)
    assert server.proc.poll() is not None


def test_the_server_preloads_what_the_workflow_scripts_import():
    names = preload.script_imports(REPO / "workflow" / "scripts")
    for module in ("_common", "shortcut_psd.study", "shortcut_psd.models", "shortcut_psd.plots", "numpy"):
        assert module in names


def _workflow(**kw):
    settings = SimpleNamespace(deployment_method=kw.pop("deployment", set()))
    mode = SimpleNamespace(name=kw.pop("mode", "DEFAULT"))
    return SimpleNamespace(
        local_exec=kw.pop("local", True),
        exec_mode=mode,
        deployment_settings=settings,
        touch=False,
        basedir=str(REPO),
    )


@pytest.mark.parametrize(
    "workflow, config",
    [
        (_workflow(local=False), {}),  # SLURM and every other remote executor
        (_workflow(mode="REMOTE"), {}),  # a job's own Snakemake process on a cluster node
        (_workflow(deployment={"conda"}), {}),  # --use-conda: the job's Python is another one
        (_workflow(), {"preload": False}),
        (_workflow(), {"threads": 2}),
    ],
)
def test_when_the_workflow_starts_no_preloader(workflow, config, tmp_path, monkeypatch):
    monkeypatch.delenv(preload.SOCKET_ENV, raising=False)
    assert preload.start_for_workflow(workflow, {"results": str(tmp_path), **config}) is None
    assert preload.SOCKET_ENV not in os.environ


@pytest.mark.slow
def test_jobs_write_the_same_outputs_with_and_without_the_preloader(tmp_path):
    """Pre-training and the pre-trained PSD jobs of a smoke-sized study, once preloaded and once not:
    every model, spectrum and metrics file is byte-identical; only the wall-time columns differ."""
    cfg = load_config("configs/smoke.yaml")
    cfg["inits"] = {k: v for k, v in cfg["inits"].items() if k in ("scratch", "photos")}
    outputs = {}
    for mode in ("True", "False"):
        work = tmp_path / mode
        work.mkdir()
        write_config(work / "study.yaml", cfg)
        proc = subprocess.run(
            [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--cores", "2", "--configfile", "study.yaml",
             "--until", "psd_pretrained", "--config", f"preload={mode}"],
            cwd=work, capture_output=True, text=True, timeout=600,
            env={**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        results = work / cfg["results"]
        logs = "".join(p.read_text() for p in (results / "logs").rglob("*.log"))
        assert ("preloaded=1" in logs) == (mode == "True")
        assert (results / "logs" / "preload.log").exists() == (mode == "True")
        outputs[mode] = results
    files = sorted(
        p.relative_to(outputs["True"])
        for p in outputs["True"].rglob("*")
        if p.suffix in (".pt", ".npz", ".json", ".csv") and "logs" not in p.parts
    )
    assert any(f.suffix == ".pt" for f in files) and any(f.parts[0] == "psd" for f in files)
    differ = [str(f) for f in files if not _same(outputs["True"] / f, outputs["False"] / f)]
    assert differ == []


def _same(a: Path, b: Path) -> bool:
    """Byte-identical, except the wall-clock ``seconds`` of training histories and learning-order records."""
    if a.read_bytes() == b.read_bytes():
        return True
    if a.name == "history.csv":
        import pandas as pd

        return pd.read_csv(a).drop(columns="seconds").equals(pd.read_csv(b).drop(columns="seconds"))
    if a.name == "dynamics.npz":
        import numpy as np

        with np.load(a) as x, np.load(b) as y:
            keys = set(x.files) - {"seconds"}
            return keys == set(y.files) - {"seconds"} and all(np.array_equal(x[k], y[k]) for k in keys)
    return False
