"""
Shared helpers of the benchmarks: a throw-away Airflow home, the emulator in its own process,
process metrics read from ``/proc`` (so measuring costs the measured process nothing), JSON output.

Not a benchmark itself; every ``bench_*.py`` imports it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TOKEN = "bench-token-0123456789"


def airflow_home() -> str:
    """Point Airflow at a fresh temporary home (never ``~/airflow``); removed at exit. Idempotent."""
    home = os.environ.get("MINERU_BENCH_AIRFLOW_HOME")
    if home and os.environ.get("AIRFLOW_HOME") == home and os.path.isdir(home):
        return home
    home = tempfile.mkdtemp(prefix="mineru-bench-airflow-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["MINERU_BENCH_AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    os.environ.pop("AIRFLOW_CONN_MINERU_DEFAULT", None)
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(home, ignore_errors=True))
    return home


# -- the emulator, in its own process ----------------------------------------------------------


@dataclass
class EmulatorProcess:
    """A MinerU emulator running in a child process (``bench/_emulator.py``)."""

    proc: subprocess.Popen[str]
    base_url: str
    root_url: str
    token: str
    cafile: str | None = None

    def connection_json(self, **extra: Any) -> str:
        return json.dumps(
            {
                "conn_type": "mineru",
                "host": self.base_url,
                "password": self.token,
                "extra": {"uid": "emulator-uid", **extra},
            }
        )

    def admin(self, method: str, action: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.root_url}/__emulator__/{action}", data=data, method=method)
        context = None
        if self.cafile:
            import ssl

            context = ssl.create_default_context(cafile=self.cafile)
        with urllib.request.urlopen(request, timeout=120, context=context) as response:
            return json.loads(response.read())

    def requests_log(self) -> list[dict[str, Any]]:
        return self.admin("GET", "requests")

    def clear_requests(self) -> None:
        self.admin("DELETE", "requests")

    def inject(self, **fault: Any) -> None:
        self.admin("POST", "faults", fault)

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def stick(self, state: str, count: int) -> None:
        self.admin("POST", "stick", {"state": state, "count": count})

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextlib.contextmanager
def emulator_process(**options: Any) -> Any:
    """
    Start ``bench/_emulator.py`` (options become ``--name value`` flags; ``tls=DIR`` serves
    HTTPS), yield an :class:`EmulatorProcess`, stop it afterwards.
    """
    args = [sys.executable, str(BENCH_DIR / "_emulator.py"), "--token", TOKEN]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    # The emulator's stderr (connection resets when a benchmark cancels its waiters) is kept out of
    # the output.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    emu = None
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process did not start")
        info = json.loads(line)
        emu = EmulatorProcess(proc, info["base_url"], info["root_url"], TOKEN, info.get("cafile"))
        yield emu
    finally:
        if emu is not None:
            emu.stop()
        elif proc.poll() is None:
            proc.kill()
            proc.wait(10)


# -- process metrics from /proc ----------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_status_kb(pid: int, key: str) -> int:
    """A ``VmRSS`` / ``VmHWM`` / ``Threads`` line of ``/proc/<pid>/status`` (kB, or the count)."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_socket_count(pid: int) -> int:
    """Open socket file descriptors of a process."""
    count = 0
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except FileNotFoundError:
        return 0
    for name in names:
        try:
            if os.readlink(f"{fd_dir}/{name}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


def peak_rss_mb() -> float:
    """This process's peak RSS so far (``ru_maxrss``), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs`` 5); False when the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


@dataclass
class Sampler:
    """
    Samples a process from another thread every ``interval`` s: open sockets, RSS (kB), threads,
    and the CPU seconds of ``cpu_pids`` (e.g. the emulator). Reading ``/proc`` costs the sampled
    process nothing.
    """

    pid: int
    interval: float = 0.1
    cpu_pids: tuple[int, ...] = ()
    samples: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                sample = {
                    "time": time.time(),
                    "sockets": proc_socket_count(self.pid),
                    "rss_kb": proc_status_kb(self.pid, "VmRSS"),
                    "threads": proc_status_kb(self.pid, "Threads"),
                    "cpu": {pid: proc_cpu_seconds(pid) for pid in self.cpu_pids},
                }
            except (FileNotFoundError, ProcessLookupError):
                return
            self.samples.append(sample)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def between(self, start: float, end: float) -> list[dict[str, Any]]:
        return [s for s in self.samples if start <= s["time"] <= end]


# -- a stand-in task context, to run an operator's execute() outside a task runner --------------


class StateStore:
    """An in-memory ``task_state_store`` (what Airflow 3.3 gives a task to keep across tries)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.values[key]

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class TaskInstance:
    """What the operators use of a task instance: ids and ``xcom_push``."""

    dag_id, task_id, run_id, map_index, try_number = "bench", "parse", "manual__bench", -1, 1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def task_context() -> dict[str, Any]:
    """A minimal context for ``operator.execute()`` (the operator logs that no task runner is present)."""
    ti = TaskInstance()
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "task_state_store": StateStore()}


# -- odds and ends -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        for dist in ("apache-airflow", "aiohttp", "requests"):
            info[dist] = version(dist)
    return info


def write_json(path: str | None, data: dict[str, Any]) -> None:
    """Write a benchmark's result to ``--json PATH`` (nothing without a path)."""
    if path:
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True))


def run_timed(run: Any, args: Any) -> dict[str, Any]:
    """``run(args)``'s result with its wall time as ``elapsed_s``."""
    started = time.time()
    results = run(args)
    results["elapsed_s"] = time.time() - started
    return results


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"
