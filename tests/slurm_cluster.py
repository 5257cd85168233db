"""A real single-node SLURM cluster on loopback, for tests (Debian's slurm-wlm 22.05 + munge).

Usage in a test module::

    from slurm_cluster import slurm_cluster  # noqa: F401  (the session-scoped pytest fixture)

    def test_x(slurm_cluster):
        slurm_cluster.run("sinfo")

or, outside pytest, ``with start_cluster(Path("/tmp/x")) as cluster: ...``.

What it does (the recipe of profiles/slurm/README.md, "A loopback cluster for the tests"):

- needs root and the binaries of ``slurm-wlm`` and ``munge`` (``.ci/install-slurm.sh``); the fixture
  skips with the reason otherwise;
- writes ``slurm.conf`` and ``gres.conf`` into a scratch dir: one node ``localhost`` with ``nproc`` CPUs,
  RealMemory from the machine (never more than exists) and stand-in GPUs (``Gres=gpu:<n>``, one per
  CPU by default, each a link to ``/dev/null`` named ``gpu<i>``) so that ``sbatch --gpus=1`` schedules
  and the job sees ``CUDA_VISIBLE_DEVICES=<i>``; ``select/cons_tres``, no accounting;
- links both files into ``/etc/slurm/`` (the SLURM jobstep executor strips ``SLURM_CONF`` before its inner
  ``srun``, so the default path must work); an existing file there is moved aside to
  ``<name>.shortcut-psd-backup`` and put back on teardown;
- starts ``munged`` as user munge on the default socket (or reuses a working munged that is not ours),
  ``slurmctld -i`` and ``slurmd -N localhost``, then polls ``sinfo`` until the node is idle;
- on teardown cancels leftover jobs, stops the daemons by their pid files (SIGTERM, wait, SIGKILL) and
  restores ``/etc/slurm``.

Robustness: the pid files and a lock file live in the fixed directory ``/run/shortcut-psd-slurm``, so a
run that crashed (or was killed) leaves pid files that the next run finds: daemons still alive under
those pids (checked against ``/proc/<pid>/cmdline``, so a recycled pid is never signalled) are stopped,
stale pid files removed, a stale ``/etc/slurm`` link replaced. The lock serialises concurrent test
sessions on one machine (one SLURM cluster per machine: port 6817, ``/etc/slurm``, the munge socket).
The state and log directories are fresh for every start (``slurmctld -i`` ignores saved state anyway);
the slurmd spool directory is fixed (``/run/shortcut-psd-slurm/spool``) and kept, so that job steps left
running by a crashed run are reported by the new slurmd as orphans and killed by SLURM itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

RUN_DIR = Path("/run/shortcut-psd-slurm")  # fixed: lock, pid files, munge key; survives a crashed run
ETC_SLURM = Path("/etc/slurm")
BACKUP_SUFFIX = ".shortcut-psd-backup"
MARKER = "shortcut-psd-slurm"  # every scratch dir path contains it: recognises our stale /etc links
STAND_IN_GPU_DIR = RUN_DIR / "dev"
MUNGE_SOCKET_DIR = Path("/run/munge")  # the default socket /run/munge/munge.socket.2 (SLURM uses it)

SLURM_BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
MUNGE_BINARIES = ("munged", "munge", "unmunge")
PARTITION = "debug"


def skip_reason() -> str | None:
    """Why a loopback SLURM cluster cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "the loopback SLURM cluster needs root (it starts slurmctld/slurmd/munged, writes /etc/slurm)"
    missing = [b for b in (*SLURM_BINARIES, *MUNGE_BINARIES, "runuser") if shutil.which(b) is None]
    if missing:
        return (
            f"SLURM/munge binaries missing: {', '.join(missing)}; "
            "install them with .ci/install-slurm.sh (Debian: slurm-wlm munge)"
        )
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "user 'munge' does not exist; install Debian's munge package (.ci/install-slurm.sh)"
    return None


# ----------------------------------------------------------------------------------------- processes


def _pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (a daemon's parent here may be a pid 1 that never reaps)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # state is the field after the parenthesised command name, which may itself contain spaces/parens
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _pid_is(pid: int, program: str) -> bool:
    """True if pid is alive and runs `program` (basename of argv[0]); guards against recycled pids."""
    if not _pid_alive(pid):
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return False
    return Path(argv0).name == program


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_by_pidfile(pidfile: Path, program: str, *, timeout: float = 15.0) -> str:
    """Stop the daemon whose pid is in `pidfile` if it still runs `program`: SIGTERM, wait, SIGKILL.

    Removes the pid file. Returns a short note of what happened (for logs).
    """
    pid = _read_pid(pidfile)
    note = f"{program}: no pid file"
    if pid is not None:
        if _pid_is(pid, program):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while _pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                note = f"{program}: pid {pid} killed (SIGKILL after {timeout:.0f} s)"
            else:
                note = f"{program}: pid {pid} stopped"
        else:
            note = f"{program}: stale pid file (pid {pid} not running {program})"
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    return note


def _run(cmd: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=timeout)


# ----------------------------------------------------------------------------------------- config


def machine_cpus() -> int:
    """What `nproc` prints: CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def machine_memory_mb() -> int:
    """Memory that really exists for us, in MB: MemTotal, lowered by a cgroup v2/v1 limit if smaller."""
    total_kb = None
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            total_kb = int(line.split()[1])
            break
    mb = (total_kb or 0) // 1024
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            raw = Path(limit_file).read_text().strip()
            if raw != "max":
                mb = min(mb, int(raw) // (1024 * 1024))
    return mb


def slurm_conf_text(base: Path, *, cpus: int, real_memory_mb: int, gpus: int) -> str:
    return f"""\
# Written by tests/slurm_cluster.py ({MARKER}): a single-node loopback cluster for tests.
ClusterName=localcluster
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={base}/state
SlurmdSpoolDir={RUN_DIR}/spool
SlurmctldPidFile={RUN_DIR}/slurmctld.pid
SlurmdPidFile={RUN_DIR}/slurmd.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# finished jobs stay visible to `squeue`/`scontrol show job` for a day: squeue status checks need some
# minutes, tests read the records of every job of a session
MinJobAge=86400
# a job without --mem gets its share instead of the whole node
DefMemPerCPU={real_memory_mb // cpus}
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={real_memory_mb} Gres=gpu:{gpus} State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def gres_conf_text(gpus: int) -> str:
    """Stand-in GPUs: without File= the node drains. Each is a link gpu<i> -> /dev/null (made by
    `_stand_in_gpu_files`); SLURM takes the index from the name, so jobs see CUDA_VISIBLE_DEVICES=<i>."""
    files = STAND_IN_GPU_DIR / ("gpu0" if gpus == 1 else f"gpu[0-{gpus - 1}]")
    return f"# Written by tests/slurm_cluster.py ({MARKER}).\nNodeName=localhost Name=gpu File={files}\n"


def _stand_in_gpu_files(gpus: int) -> None:
    shutil.rmtree(STAND_IN_GPU_DIR, ignore_errors=True)
    STAND_IN_GPU_DIR.mkdir(mode=0o755, parents=True)
    for i in range(gpus):
        (STAND_IN_GPU_DIR / f"gpu{i}").symlink_to("/dev/null")


# ----------------------------------------------------------------------------------------- the cluster


@dataclass
class SlurmCluster:
    """A running loopback cluster. `root` is the scratch dir (slurm.conf, gres.conf, state/, log/)."""

    root: Path
    cpus: int
    real_memory_mb: int
    gpus: int
    partition: str = PARTITION
    own_munged: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a SLURM client command (e.g. ``run("squeue", "-h")``); returns the CompletedProcess."""
        return _run(cmd, check=check, timeout=timeout)

    def node_state(self) -> str:
        r = self.run("sinfo", "-h", "-o", "%T", check=False, timeout=15)
        return r.stdout.strip() if r.returncode == 0 else f"<sinfo failed: {r.stderr.strip()}>"

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Poll `sinfo -h -o %T` until the node is `idle`; RuntimeError with the daemon logs otherwise."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.node_state()
            if state == "idle":
                return
            time.sleep(0.25)
        node = self.run("scontrol", "show", "node", check=False, timeout=15)
        raise RuntimeError(
            f"SLURM node not idle after {timeout:.0f} s (sinfo state: {state!r})\n"
            f"scontrol show node:\n{node.stdout}{node.stderr}\n{self.daemon_logs()}"
        )

    def jobs(self, after: int = 0) -> list[dict[str, str]]:
        """All jobs slurmctld still knows (finished ones for MinJobAge=300 s), with JobId > `after`.

        Each job is a dict of the `scontrol show job -o` fields (JobId, Comment, JobState, TresPerJob,
        ...). A job submitted by Snakemake has Comment ``rule_<rule>[_wildcards_<...>]``.
        """
        r = self.run("scontrol", "show", "job", "-o", check=False, timeout=30)
        if r.returncode != 0:
            if "No jobs in the system" in r.stdout + r.stderr:
                return []
            raise RuntimeError(f"scontrol show job failed: {r.stderr.strip()}")
        out = []
        for line in r.stdout.splitlines():
            if not line.strip() or "No jobs in the system" in line:
                continue
            job = parse_scontrol_line(line)
            if int(job.get("JobId", "0")) > after:
                out.append(job)
        return sorted(out, key=lambda j: int(j["JobId"]))

    def last_job_id(self) -> int:
        return max((int(j["JobId"]) for j in self.jobs()), default=0)

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Cancel every job of this private cluster and wait until none runs."""
        r = self.run("squeue", "-h", "-o", "%i", check=False, timeout=15)
        ids = r.stdout.split() if r.returncode == 0 else []
        if not ids:
            return
        self.run("scancel", *ids, check=False, timeout=15)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.run("squeue", "-h", "-o", "%i", check=False, timeout=15)
            if r.returncode != 0 or not r.stdout.strip():
                return
            time.sleep(0.5)

    def daemon_logs(self, lines: int = 40) -> str:
        """The last `lines` lines of the slurmctld, slurmd and munged logs (for error messages)."""
        parts = []
        files = [self.log_dir / "slurmctld.log", self.log_dir / "slurmd.log"]
        if self.own_munged:
            files.append(RUN_DIR / "munge" / "munged.log")
        for f in files:
            try:
                tail = f.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {f} (last {len(tail)} lines)\n" + "\n".join(tail))
            except OSError as e:
                parts.append(f"--- {f}: {e}")
        return "\n".join(parts)


_FIELD_RE = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")


def parse_scontrol_line(line: str) -> dict[str, str]:
    """Parse one `scontrol show job -o` line (``Key=value Key=value ...``; values may hold spaces)."""
    matches = list(_FIELD_RE.finditer(line))
    fields = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        fields[m.group(1)] = line[m.end() : end].strip()
    return fields


# ----------------------------------------------------------------------------------------- lifecycle


@contextlib.contextmanager
def _lock(timeout: float) -> Iterator[None]:
    RUN_DIR.mkdir(mode=0o755, exist_ok=True)
    fd = os.open(RUN_DIR / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"another test session holds {RUN_DIR / 'lock'} (a loopback SLURM cluster is "
                        f"running) for more than {timeout:.0f} s; only one can run per machine"
                    ) from None
                time.sleep(1)
        yield
    finally:
        os.close(fd)  # releases the lock


def _link_etc(src: Path, name: str) -> None:
    """Point /etc/slurm/<name> at src; move a foreign file aside to <name>.shortcut-psd-backup."""
    ETC_SLURM.mkdir(mode=0o755, parents=True, exist_ok=True)
    dst, backup = ETC_SLURM / name, ETC_SLURM / (name + BACKUP_SUFFIX)
    if dst.is_symlink() and MARKER in os.readlink(dst):
        dst.unlink()  # ours, left by a crashed run; a backup next to it (if any) is the original
    elif dst.exists() or dst.is_symlink():
        if backup.exists() or backup.is_symlink():
            raise RuntimeError(
                f"both {dst} and {backup} exist; move one away by hand (the backup is the file that was "
                "there before the SLURM tests ran)"
            )
        dst.rename(backup)
    dst.symlink_to(src)


def _unlink_etc(src: Path, name: str) -> None:
    dst, backup = ETC_SLURM / name, ETC_SLURM / (name + BACKUP_SUFFIX)
    if dst.is_symlink() and os.readlink(dst) == str(src):
        dst.unlink()
    if (backup.exists() or backup.is_symlink()) and not (dst.exists() or dst.is_symlink()):
        backup.rename(dst)


def _munge_works() -> bool:
    """True if a munged answers on the default socket (`munge -n | unmunge`)."""
    try:
        cred = _run(["munge", "-n"], check=False, timeout=10)
        if cred.returncode != 0:
            return False
        r = subprocess.run(["unmunge"], input=cred.stdout, capture_output=True, text=True, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _start_munged() -> bool:
    """Start our munged as user munge on the default socket; returns False if a foreign one is reused."""
    munge = pwd.getpwnam("munge")
    mdir = RUN_DIR / "munge"
    stop_by_pidfile(mdir / "munged.pid", "munged")  # ours from a crashed run
    # the default socket's directory, as the Debian unit would create it
    MUNGE_SOCKET_DIR.mkdir(mode=0o755, exist_ok=True)
    os.chown(MUNGE_SOCKET_DIR, munge.pw_uid, munge.pw_gid)
    MUNGE_SOCKET_DIR.chmod(0o755)
    if _munge_works():
        return False  # a munged we did not start (the system's): all daemons are local, any key will do
    mdir.mkdir(mode=0o700, exist_ok=True)
    os.chown(mdir, munge.pw_uid, munge.pw_gid)
    mdir.chmod(0o700)
    key = mdir / "munge.key"
    for old in (key, mdir / "munged.log"):
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(1024))
    os.chown(key, munge.pw_uid, munge.pw_gid)
    key.chmod(0o400)
    # --force: a stale socket of a killed munged may remain; nothing answers on it (checked above)
    cmd = [
        "runuser", "-u", "munge", "--", "munged", "--force",
        f"--key-file={key}", f"--pid-file={mdir / 'munged.pid'}",
        f"--log-file={mdir / 'munged.log'}", f"--seed-file={mdir / 'munged.seed'}",
    ]  # fmt: skip
    r = _run(cmd, check=False, timeout=30)
    deadline = time.monotonic() + 10
    while not _munge_works():
        if time.monotonic() > deadline:
            log = (mdir / "munged.log").read_text(errors="replace") if (mdir / "munged.log").exists() else ""
            raise RuntimeError(
                f"munged did not come up (rc={r.returncode}): {r.stdout}{r.stderr}\n--- munged.log\n{log}"
            )
        time.sleep(0.1)
    return True


def _stop_stale_slurm() -> list[str]:
    return [
        stop_by_pidfile(RUN_DIR / "slurmd.pid", "slurmd"),
        stop_by_pidfile(RUN_DIR / "slurmctld.pid", "slurmctld"),
    ]


@contextlib.contextmanager
def start_cluster(
    base: Path, *, gpus: int | None = None, lock_timeout: float = 1800.0, idle_timeout: float = 60.0
):
    """Start a loopback SLURM cluster with its files under `base` (created; state/ and log/ wiped).

    `gpus`: number of stand-in GPUs of the node; default one per CPU, so that GPU jobs are limited by
    the cores as in a local run (with one, every GPU job of a workflow waits for the previous one).

    Yields a SlurmCluster; stops everything and restores /etc/slurm on exit, also on errors.
    """
    reason = skip_reason()
    if reason:
        raise RuntimeError(reason)
    base = Path(base).resolve()
    if MARKER not in str(base):  # the stale-link check in _link_etc relies on it
        base = base / MARKER
    with _lock(lock_timeout), contextlib.ExitStack() as stack:
        notes = _stop_stale_slurm()
        # the spool dir is fixed and kept: a new slurmd finds the job steps a crashed run left running
        # there and reports them, and slurmctld (which does not know them) has them killed
        (RUN_DIR / "spool").mkdir(mode=0o755, exist_ok=True)
        for sub in ("state", "log"):
            shutil.rmtree(base / sub, ignore_errors=True)
            (base / sub).mkdir(parents=True, mode=0o755)
        cpus = machine_cpus()
        cluster = SlurmCluster(
            root=base,
            cpus=cpus,
            gpus=gpus or cpus,
            # keep ~10% (at least 512 MB) for the OS and the test process; never more than exists
            real_memory_mb=max(256, min(int(machine_memory_mb() * 0.9), machine_memory_mb() - 512)),
            notes=notes,
        )
        cluster.conf.write_text(
            slurm_conf_text(base, cpus=cpus, real_memory_mb=cluster.real_memory_mb, gpus=cluster.gpus)
        )
        _stand_in_gpu_files(cluster.gpus)
        (base / "gres.conf").write_text(gres_conf_text(cluster.gpus))

        for name in ("slurm.conf", "gres.conf"):
            src = base / name
            stack.callback(_unlink_etc, src, name)
            _link_etc(src, name)

        cluster.own_munged = _start_munged()
        if cluster.own_munged:
            stack.callback(stop_by_pidfile, RUN_DIR / "munge" / "munged.pid", "munged")

        stack.callback(stop_by_pidfile, RUN_DIR / "slurmctld.pid", "slurmctld")
        r = _run(["slurmctld", "-i"], check=False)
        if r.returncode != 0:
            raise RuntimeError(f"slurmctld -i failed: {r.stdout}{r.stderr}\n{cluster.daemon_logs()}")
        stack.callback(stop_by_pidfile, RUN_DIR / "slurmd.pid", "slurmd")
        r = _run(["slurmd", "-N", "localhost"], check=False)
        if r.returncode != 0:
            raise RuntimeError(f"slurmd -N localhost failed: {r.stdout}{r.stderr}\n{cluster.daemon_logs()}")
        # cancel leftovers before the daemons stop (callbacks run in reverse order)
        stack.callback(cluster.cancel_all)
        cluster.wait_idle(idle_timeout)
        yield cluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> Iterator[SlurmCluster]:
    """Session-scoped loopback SLURM cluster (see the module docstring); skips unless root + binaries."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with start_cluster(tmp_path_factory.mktemp(MARKER)) as cluster:
        yield cluster
