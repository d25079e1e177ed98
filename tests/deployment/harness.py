"""
A real, local Airflow deployment for the deployment suite and for people: ``python -m tests.deployment.harness``.

Everything listens on 127.0.0.1 on free ports and lives in one directory:

- PostgreSQL (Debian's binaries, ``/usr/lib/postgresql/*/bin``), its own cluster, run as the
  ``postgres`` user when the harness runs as root (PostgreSQL refuses root);
- the Airflow metadata database on it (psycopg2; asyncpg for Airflow 3's async engine);
- Airflow 3: ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``; Airflow 2.11:
  ``webserver``, ``scheduler``, ``triggerer``; each a separate process with its own log file;
- LocalExecutor, or CeleryExecutor with Redis (Debian's ``redis-server``) and ``airflow celery
  worker`` processes with distinct hostnames;
- the bundled MinerU emulator as MinerU (``AIRFLOW_CONN_MINERU_DEFAULT``), moto's S3 server for
  object storage (``AIRFLOW_CONN_AWS_MOTO``);
- the DAGs of the repository's ``dags/`` folder (plus, on Airflow 3, the suite's own DAGs in
  ``tests/deployment/dags`` as a second bundle).

Every process is started in its own process group and stopped by the PID the harness started;
every wait has a time-out. Outbound traffic is pinned to loopback: the processes get a proxy on a
closed loopback port, so a URL that is not on 127.0.0.1 fails fast instead of leaving the machine.
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "dags"
SUITE_DAGS = Path(__file__).resolve().parent / "dags"
HOST = "127.0.0.1"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"
AWS_CONN_ID = "aws_moto"
#: The ``mineru_budget`` connection's daily page budget and account store (the bucket is made by its test).
BUDGET_PAGES = 10
BUDGET_BUCKET = "mineru-account"
BUDGET_STORE = f"s3://{AWS_CONN_ID}@{BUDGET_BUCKET}/store"
#: A closed loopback port: anything that would leave the machine through a proxy-aware client fails here.
BLACKHOLE_PROXY = f"http://{HOST}:9"
AIRFLOW_VERSION = package_version("apache-airflow")
AIRFLOW_3 = int(AIRFLOW_VERSION.split(".")[0]) >= 3

T = TypeVar("T")


class DeploymentError(RuntimeError):
    """The deployment did not come up, or a wait ran out; the message says where the logs are."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for(
    predicate: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5, logs: str = ""
) -> T:
    """
    Call ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds.

    :param predicate: returns the awaited value, or a falsy value to keep waiting; exceptions count as falsy.
    :param timeout: seconds before :class:`DeploymentError` is raised.
    :param what: what is awaited (for the error message).
    :param interval: seconds between calls.
    :param logs: where to look when it fails (appended to the message).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise DeploymentError(f"timed out after {timeout:.0f} s waiting for {what}{detail}. {logs}".strip())
        time.sleep(interval)


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<N>/bin`` holding ``initdb`` and ``postgres``."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "postgres").exists():
        return Path(found).resolve().parent
    raise DeploymentError("PostgreSQL not found: install Debian's postgresql (apt-get install -y postgresql)")


@dataclass
class Process:
    """A process the harness started, in its own process group, with its log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        """The PID the harness started (also the process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def kill9(self) -> None:
        """``kill -9`` the process group (the fault, not a clean stop)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after ``timeout`` seconds."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Children of the group (task processes, gunicorn workers) go too, whatever the leader did.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log file."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ApiClient:
    """
    The Airflow REST API the way a user drives it: ``/api/v2`` with a JWT from ``/auth/token``
    (Airflow 3) or ``/api/v1`` with basic auth (Airflow 2.11).

    :param base_url: ``http://127.0.0.1:PORT``.
    :param username: a user of the auth manager.
    :param password: its password.
    """

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.prefix = "/api/v2" if AIRFLOW_3 else "/api/v1"
        self._jwt: str | None = None

    def _auth_header(self) -> str:
        if not AIRFLOW_3:
            raw = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if self._jwt is None:
            body = self._send("POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False)
            self._jwt = body["access_token"]
        return f"Bearer {self._jwt}"

    def _send(self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", self._auth_header())
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and auth and AIRFLOW_3 and self._jwt is not None:
                self._jwt = None  # expired, or the api-server restarted with a new key: log in again
                return self._send(method, path, body, auth=auth, timeout=timeout)
            detail = exc.read().decode(errors="replace")[:500]
            raise DeploymentError(f"{method} {path} -> HTTP {exc.code}: {detail}") from None
        return json.loads(payload) if payload else None

    def get(self, path: str) -> Any:
        """GET ``<prefix><path>``."""
        return self._send("GET", self.prefix + path)

    def post(self, path: str, body: Any) -> Any:
        """POST ``<prefix><path>``."""
        return self._send("POST", self.prefix + path, body)

    def patch(self, path: str, body: Any) -> Any:
        """PATCH ``<prefix><path>``."""
        return self._send("PATCH", self.prefix + path, body)

    def healthy(self) -> bool:
        """The API answers an authenticated request."""
        try:
            self.get("/dags?limit=1")
            return True
        except Exception:
            return False

    def dag(self, dag_id: str) -> dict:
        """The DAG's record (404 until the DAG processor parsed it)."""
        return self.get(f"/dags/{dag_id}")

    def trigger(self, dag_id: str, conf: dict | None = None, run_id: str | None = None) -> str:
        """Trigger a run of ``dag_id``; the run id."""
        body: dict[str, Any] = {"conf": conf or {}}
        if AIRFLOW_3:
            body["logical_date"] = None
        if run_id:
            body["dag_run_id"] = run_id
        return self.post(f"/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict:
        """The DAG run's record."""
        return self.get(f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def runs(self, dag_id: str) -> list[dict]:
        """Every run of ``dag_id``."""
        return self.get(f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """The run's task instances (mapped ones one per map index)."""
        quoted = urllib.parse.quote(run_id, safe="")
        return self.get(f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict]:
        """Every try of one task instance (Airflow's task instance history)."""
        quoted = urllib.parse.quote(run_id, safe="")
        path = f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}"
        path += f"/{map_index}/tries" if map_index >= 0 else "/tries"
        return self.get(path)["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        """An XCom value, deserialized."""
        quoted = urllib.parse.quote(run_id, safe="")
        path = f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/xcomEntries/{key}"
        query = f"?map_index={map_index}" if map_index >= 0 else ""
        if AIRFLOW_3:
            query += ("&" if query else "?") + "deserialize=true"
        value = self.get(path + query)["value"]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
            with contextlib.suppress(ValueError, SyntaxError):
                return ast.literal_eval(value)  # Airflow 2.11 answers the value's repr
        return value

    def wait_run(self, dag_id: str, run_id: str, *, timeout: float, logs: str = "") -> dict:
        """Wait until the run is ``success`` or ``failed``; its record."""
        return wait_for(
            lambda: (lambda r: r if r["state"] in ("success", "failed") else None)(self.run(dag_id, run_id)),
            timeout=timeout,
            interval=1.0,
            what=f"DAG run {dag_id}/{run_id} to finish",
            logs=logs,
        )


@dataclass
class Deployment:
    """
    One local Airflow deployment; :meth:`start` brings it up, :meth:`stop` takes it down.

    :param root: the directory holding everything (a temporary one by default).
    :param executor: ``LocalExecutor`` or ``CeleryExecutor``.
    :param celery_workers: how many ``airflow celery worker`` processes (CeleryExecutor only).
    :param api_port: the api-server / webserver port (a free one by default).
    :param emulator_args: extra ``mineru-emulator`` options (timings).
    :param extra_env: more environment for every Airflow process.
    :param triggerer_env: more environment for the triggerer processes only, applied last (opt-in,
        for benchmarks comparing triggerer settings; empty by default).
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mineru-deployment-")))
    executor: str = "LocalExecutor"
    celery_workers: int = 0
    api_port: int | None = None
    emulator_args: tuple[str, ...] = ("--pending", "1", "--per-page", "0.25", "--converting", "0.5")
    extra_env: dict[str, str] = field(default_factory=dict)
    triggerer_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    token: str = field(default_factory=lambda: "emu-" + secrets.token_hex(12))
    callback_secret: str = field(default_factory=lambda: "cb_" + secrets.token_hex(12))
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.logs = self.root / "logs"
        self.home = self.root / "airflow-home"
        self.output = self.root / "output"
        self.inputs = self.root / "inputs"
        for folder in (self.logs, self.home, self.output, self.inputs):
            folder.mkdir(parents=True, exist_ok=True)
        self.pg_port = free_port()
        self.emulator_port = free_port()
        self.v1_port = free_port()
        self.moto_port = free_port()
        self.redis_port = free_port() if self.executor == "CeleryExecutor" else None
        self.api_port = self.api_port or free_port()
        self.api_url = f"http://{HOST}:{self.api_port}"
        self.emulator_url = f"http://{HOST}:{self.emulator_port}"
        #: The emulator's second flavor, the open-source ``mineru-api`` server (V1), for ``mineru_selfhosted``.
        self.v1_url = f"http://{HOST}:{self.v1_port}"
        self.moto_url = f"http://{HOST}:{self.moto_port}"
        self.api = ApiClient(self.api_url, ADMIN_USER, ADMIN_PASSWORD)
        self._jwt_secret = secrets.token_urlsafe(32)
        self._secret_key = secrets.token_urlsafe(32)
        self._triggerers = 0

    # -- where things are -------------------------------------------------------------------------

    def where_logs(self) -> str:
        """The sentence a failure prints: where the logs are (kept)."""
        return f"Deployment logs (kept): {self.logs} (process logs), {self.home / 'logs'} (task and trigger logs)."

    @property
    def sql_alchemy_conn(self) -> str:
        """The metadata database URL (sync engine)."""
        return f"postgresql+psycopg2://airflow@{HOST}:{self.pg_port}/airflow"

    def mineru_connection(self) -> dict:
        """The ``mineru_default`` connection (JSON form), pointed at the emulator, with callback extras."""
        return {
            "conn_type": "mineru",
            "host": f"{self.emulator_url}/api/v4",
            "password": self.token,
            "extra": {"uid": "emulator-uid", "callback_secret": self.callback_secret, "retry_backoff": 0.2},
        }

    def budget_connection(self) -> dict:
        """The ``mineru_budget`` connection: the emulator with a small daily page budget, counted in S3 (moto)."""
        extra = {"retry_backoff": 0.2, "daily_page_budget": BUDGET_PAGES, "account_store": BUDGET_STORE}
        return {**self.mineru_connection(), "extra": extra}

    def selfhosted_connection(self) -> dict:
        """The ``mineru_selfhosted`` connection: ``api_flavor="mineru-api"`` at the V1 emulator's root URL."""
        return {
            "conn_type": "mineru",
            "host": self.v1_url,
            "password": self.token,
            "extra": {"api_flavor": "mineru-api", "retry_backoff": 0.2},
        }

    def env(self, **more: str) -> dict[str, str]:
        """The environment of every Airflow process (no AIRFLOW* variable of the caller leaks in)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MINERU_"))}
        python_path = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONPATH": python_path,
                "PYTHONUNBUFFERED": "1",
                "HTTP_PROXY": BLACKHOLE_PROXY,
                "HTTPS_PROXY": BLACKHOLE_PROXY,
                "http_proxy": BLACKHOLE_PROXY,
                "https_proxy": BLACKHOLE_PROXY,
                "NO_PROXY": f"{HOST},localhost",
                "no_proxy": f"{HOST},localhost",
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "32",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "32",
                "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "16",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.deployment.hostname.deployment_hostname",
                "AIRFLOW__CORE__FERNET_KEY": "",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__SCHEDULER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW_CONN_MINERU_DEFAULT": json.dumps(self.mineru_connection()),
                "AIRFLOW_CONN_MINERU_SELFHOSTED": json.dumps(self.selfhosted_connection()),
                "AIRFLOW_CONN_MINERU_BUDGET": json.dumps(self.budget_connection()),
                f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps(
                    {
                        "conn_type": "aws",
                        "login": "testing",
                        "password": "testing",
                        "extra": {"endpoint_url": self.moto_url, "region_name": "us-east-1"},
                    }
                ),
                "MINERU_EXAMPLE_OUTPUT": str(self.output / "examples"),
                "MINERU_EXAMPLE_POLL_INTERVAL": "1",
                "MINERU_EXAMPLE_SCHEDULE": "",  # mineru_incremental runs when a test triggers it
                "MINERU_CALLBACK_URL": f"{self.api_url}/mineru/callback/mineru_default",
                "MINERU_EMULATOR_URL": self.emulator_url,
            }
        )
        if AIRFLOW_3:
            bundles = [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(EXAMPLE_DAGS), "refresh_interval": 5},
                },
                {
                    "name": "deployment-suite",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(SUITE_DAGS), "refresh_interval": 5},
                },
            ]
            env.update(
                {
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": (
                        f"postgresql+asyncpg://airflow@{HOST}:{self.pg_port}/airflow"
                    ),
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                    "AIRFLOW__API__HOST": HOST,
                    "AIRFLOW__API__PORT": str(self.api_port),
                    "AIRFLOW__API__BASE_URL": f"{self.api_url}/",
                    "AIRFLOW__API__WORKERS": "1",
                    "AIRFLOW__API__SECRET_KEY": self._secret_key,
                    "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
                    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                }
            )
        else:
            env.update(
                {
                    "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": HOST,
                    "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(self.api_port),
                    "AIRFLOW__WEBSERVER__BASE_URL": self.api_url,
                    "AIRFLOW__WEBSERVER__WORKERS": "1",
                    "AIRFLOW__WEBSERVER__SECRET_KEY": self._secret_key,
                    "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
                    "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
                    "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "60",
                    "AIRFLOW__SCHEDULER__PARSING_PROCESSES": "1",
                    "AIRFLOW__SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD": "30",
                    "AIRFLOW__SCHEDULER__ZOMBIE_DETECTION_INTERVAL": "5",
                }
            )
        if self.executor == "CeleryExecutor":
            env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": f"redis://{HOST}:{self.redis_port}/0",
                    "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://airflow@{HOST}:{self.pg_port}/airflow",
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "8",
                    "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                }
            )
        env.update(self.extra_env)
        env.update(more)
        return env

    # -- processes -------------------------------------------------------------------------------

    def spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, user: str | None = None
    ) -> Process:
        """Start ``argv`` in its own process group, output to ``logs/<name>.log``."""
        log = self.logs / f"{name}.log"
        handle = log.open("ab")
        try:
            popen = subprocess.Popen(
                argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env if env is not None else self.env(),
                cwd=str(self.root),
                start_new_session=True,
                user=user,
            )
        finally:
            handle.close()
        process = Process(name=name, popen=popen, log=log)
        self.processes[name] = process
        return process

    def airflow(self, name: str, *args: str, env: dict[str, str] | None = None) -> Process:
        """Start one ``airflow`` component."""
        return self.spawn(name, [str(Path(sys.executable).parent / "airflow"), *args], env=env)

    def run_airflow(self, *args: str, timeout: float = 300) -> None:
        """Run an ``airflow`` command to completion (``db migrate``, ``users create``)."""
        log = self.logs / f"airflow-{args[0]}-{args[1] if len(args) > 1 else ''}.log"
        with log.open("ab") as handle:
            result = subprocess.run(
                [str(Path(sys.executable).parent / "airflow"), *args],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                cwd=str(self.root),
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            raise DeploymentError(f"airflow {' '.join(args)} failed; see {log}. {self.where_logs()}")

    def _check_alive(self, *names: str) -> None:
        for name in names:
            process = self.processes[name]
            if not process.alive():
                raise DeploymentError(
                    f"{name} exited with {process.popen.returncode}; last lines of {process.log}:\n{process.tail()}\n"
                    + self.where_logs()
                )

    # -- services --------------------------------------------------------------------------------

    def start_postgres(self) -> None:
        """initdb a fresh cluster and run ``postgres`` on 127.0.0.1:<pg_port> (as ``postgres`` when root)."""
        started = time.monotonic()
        bin_dir = postgres_bin_dir()
        data = self.root / "pgdata"
        sockets = self.root / "pgsock"
        user = None
        if os.geteuid() == 0:
            user = "postgres"
            import pwd

            entry = pwd.getpwnam(user)
            for path in (data, sockets):
                path.mkdir(exist_ok=True)
                os.chown(path, entry.pw_uid, entry.pw_gid)
            os.chmod(self.root, 0o755)
            # postgres must reach its data directory: let it traverse (not list) every folder above
            # ours (CI puts the root under a 0700 ``mktemp -d``).
            for folder in self.root.parents:
                mode = folder.stat()
                if mode.st_uid == os.geteuid() and not mode.st_mode & 0o001:
                    os.chmod(folder, mode.st_mode | 0o011)
        else:
            sockets.mkdir(exist_ok=True)
        log = self.logs / "initdb.log"
        with log.open("ab") as handle:
            result = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8"],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=120,
                check=False,
                user=user,
                cwd=str(self.root),
            )
        if result.returncode != 0:
            raise DeploymentError(f"initdb failed; see {log}")
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.pg_port),
            "-k",
            str(sockets),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "max_connections=300",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        self.spawn("postgres", argv, env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}, user=user)

        def ready() -> bool:
            self._check_alive("postgres")
            import psycopg2

            connection = psycopg2.connect(host=HOST, port=self.pg_port, user="airflow", dbname="postgres")
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow'")
                if cursor.fetchone() is None:
                    cursor.execute("CREATE DATABASE airflow")
            connection.close()
            return True

        wait_for(ready, timeout=60, what="PostgreSQL", logs=self.where_logs())
        self.timings["postgres_s"] = round(time.monotonic() - started, 1)

    def start_emulator(self) -> None:
        """The MinerU emulator on 127.0.0.1:<emulator_port>, offline (built-in demo documents)."""
        argv = [
            sys.executable,
            "-m",
            "mineru_emulator",
            "--host",
            HOST,
            "--port",
            str(self.emulator_port),
            "--token",
            self.token,
            "--offline-demo",
            "--fetch-timeout",
            "3",
            *self.emulator_args,
        ]
        self.spawn("emulator", argv, env=self.env())
        wait_for(
            lambda: self._check_alive("emulator") or self.emulator("GET", "health")["status"] == "ok",
            timeout=30,
            what="the MinerU emulator",
            logs=self.where_logs(),
        )

    def start_selfhosted_emulator(self) -> None:
        """The emulator's ``mineru-api`` flavor on 127.0.0.1:<v1_port> (the server's API key is the token)."""
        argv = [sys.executable, "-m", "mineru_emulator", "--flavor", "mineru-api"]
        argv += ["--host", HOST, "--port", str(self.v1_port), "--token", self.token]
        self.spawn("emulator-v1", argv, env=self.env())

        def ready() -> bool:
            self._check_alive("emulator-v1")
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"{self.v1_url}/v1/health", timeout=2) as answer:
                return answer.status == 200

        wait_for(ready, timeout=30, what="the mineru-api emulator", logs=self.where_logs())

    def start_moto(self) -> None:
        """moto's S3 server on 127.0.0.1:<moto_port>."""
        argv = [str(Path(sys.executable).parent / "moto_server"), "-H", HOST, "-p", str(self.moto_port)]
        self.spawn("moto", argv, env=self.env())

        def ready() -> bool:
            self._check_alive("moto")
            with socket.create_connection((HOST, self.moto_port), timeout=2):
                return True

        wait_for(ready, timeout=30, what="the moto S3 server", logs=self.where_logs())

    def start_redis(self) -> None:
        """``redis-server`` on 127.0.0.1:<redis_port>, no persistence."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise DeploymentError(
                "redis-server not found: install Debian's redis-server (apt-get install -y redis-server)"
            )
        argv = [binary, "--bind", HOST, "--port", str(self.redis_port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.root), "--protected-mode", "no"]
        self.spawn("redis", argv, env={"PATH": os.environ.get("PATH", "")})

        def ready() -> bool:
            self._check_alive("redis")
            with socket.create_connection((HOST, self.redis_port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_for(ready, timeout=30, what="redis-server", logs=self.where_logs())

    def emulator(self, method: str, action: str, body: Any = None) -> Any:
        """Call the emulator's admin API (``/__emulator__/<action>``)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.emulator_url}/__emulator__/{action}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def requests_log(self) -> list[dict]:
        """The emulator's request log (``RecordedRequest`` dicts)."""
        return self.emulator("GET", "requests")

    # -- Airflow ---------------------------------------------------------------------------------

    def migrate(self) -> None:
        """``airflow db migrate`` (and the admin user on Airflow 2.11)."""
        started = time.monotonic()
        if AIRFLOW_3:
            (self.home / "passwords.json").write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
        self.run_airflow("db", "migrate")
        if not AIRFLOW_3:
            self.run_airflow(
                "users", "create", "--username", ADMIN_USER, "--password", ADMIN_PASSWORD, "--role", "Admin",
                "--email", "admin@example.invalid", "--firstname", "Ad", "--lastname", "Min",
            )  # fmt: skip
        self.timings["db_migrate_s"] = round(time.monotonic() - started, 1)

    def start_api(self) -> None:
        """The api-server (Airflow 3) or webserver (2.11); waits until the REST API answers."""
        if AIRFLOW_3:
            self.airflow("api-server", "api-server", "--host", HOST, "--port", str(self.api_port))
        else:
            self.airflow("webserver", "webserver", "--hostname", HOST, "--port", str(self.api_port))
        name = "api-server" if AIRFLOW_3 else "webserver"
        wait_for(
            lambda: self._check_alive(name) or self.api.healthy(),
            timeout=180,
            interval=1,
            what=f"the {name} on {self.api_url}",
            logs=self.where_logs(),
        )

    def start_triggerer(self) -> Process:
        """One more ``airflow triggerer`` (``triggerer``, ``triggerer-2``, ...)."""
        self._triggerers += 1
        name = "triggerer" if self._triggerers == 1 else f"triggerer-{self._triggerers}"
        # --skip-serve-logs: the log server would listen on every interface; the logs are on this disk anyway.
        env = self.env(**{**self.triggerer_env, "MINERU_DEPLOYMENT_HOSTNAME": name})
        return self.airflow(name, "triggerer", "--skip-serve-logs", env=env)

    def start_celery_worker(self, index: int) -> Process:
        """``airflow celery worker`` number ``index`` with hostname ``worker<index>``."""
        hostname = f"worker{index}"
        return self.airflow(
            f"celery-{hostname}",
            "celery",
            "worker",
            "--celery-hostname",
            f"{hostname}@{HOST}",
            "--concurrency",
            "8",
            "--without-mingle",
            "--without-gossip",
            "--skip-serve-logs",
            env=self.env(MINERU_DEPLOYMENT_HOSTNAME=hostname),
        )

    def start(self) -> Deployment:
        """Bring everything up; on failure stop what started and raise with the log location."""
        started = time.monotonic()
        try:
            self.start_postgres()
            self.start_emulator()
            self.start_selfhosted_emulator()
            self.start_moto()
            if self.executor == "CeleryExecutor":
                self.start_redis()
            self.migrate()
            self.start_api()
            scheduler_env = self.env(MINERU_DEPLOYMENT_HOSTNAME="scheduler")
            self.airflow("scheduler", "scheduler", "--skip-serve-logs", env=scheduler_env)
            if AIRFLOW_3:
                self.airflow("dag-processor", "dag-processor")
            self.start_triggerer()
            for index in range(1, self.celery_workers + 1):
                self.start_celery_worker(index)
        except BaseException:
            self.stop()
            raise
        self.timings["start_s"] = round(time.monotonic() - started, 1)
        return self

    def wait_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        """Wait until the DAG processor parsed every DAG in ``dag_ids``."""
        started = time.monotonic()

        def parsed() -> bool:
            self._check_alive(*[n for n in self.processes if n != "triggerer" and not n.startswith("triggerer-")])
            for dag_id in dag_ids:
                record = self.api.dag(dag_id)
                if record.get("is_paused"):
                    self.api.patch(f"/dags/{dag_id}", {"is_paused": False})
            return True

        wait_for(parsed, timeout=timeout, interval=2, what=f"DAGs {dag_ids} to be parsed", logs=self.where_logs())
        self.timings["dags_parsed_s"] = round(time.monotonic() - started, 1)

    def stop(self) -> None:
        """Stop every process the harness started, newest first (by PID / process group)."""
        for process in reversed(list(self.processes.values())):
            process.stop(timeout=5 if process.name in ("moto", "emulator", "emulator-v1") else 20)

    def logs_mention(self, text: str) -> list[Path]:
        """Every log file (process, task, trigger) containing ``text``."""
        found = []
        for folder in (self.logs, self.home / "logs"):
            for path in folder.rglob("*"):
                if path.is_file():
                    with contextlib.suppress(OSError):
                        if text in path.read_text(errors="replace"):
                            found.append(path)
        return found

    @contextlib.contextmanager
    def running(self) -> Iterator[Deployment]:
        """``with Deployment(...).running() as d:`` start, yield, stop."""
        self.start()
        try:
            yield self
        finally:
            self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.deployment.harness``: the local deployment for people; Ctrl-C stops it."""
    parser = argparse.ArgumentParser(prog="python -m tests.deployment.harness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="api-server / webserver port (default: 8080)")
    parser.add_argument("--executor", choices=("LocalExecutor", "CeleryExecutor"), default="LocalExecutor")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (CeleryExecutor only)")
    parser.add_argument("--root", type=Path, default=None, help="directory for everything (default: a temp dir)")
    parser.add_argument("--pending", default="2", help="emulator: seconds a task stays pending (default: 2)")
    parser.add_argument("--per-page", default="1", help="emulator: seconds of running per page (default: 1)")
    args = parser.parse_args(argv)
    kwargs: dict[str, Any] = {
        "executor": args.executor,
        "celery_workers": args.workers if args.executor == "CeleryExecutor" else 0,
        "api_port": args.port,
        "emulator_args": ("--pending", args.pending, "--per-page", args.per_page, "--converting", "1"),
    }
    if args.root:
        kwargs["root"] = args.root
    deployment = Deployment(**kwargs)
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    print(f"Starting Airflow {AIRFLOW_VERSION} ({args.executor}) in {deployment.root} ...", flush=True)
    try:
        deployment.start()
        print(f"Airflow UI:  {deployment.api_url}   login: {ADMIN_USER} / {ADMIN_PASSWORD}", flush=True)
        print(f"MinerU emulator: {deployment.emulator_url}/api/v4 (connection mineru_default)", flush=True)
        print(f"Results land in: {deployment.output}", flush=True)
        print(f"Logs: {deployment.logs}  (task logs: {deployment.home / 'logs'})", flush=True)
        print("Trigger mineru_parse_files and watch it defer and finish. Ctrl-C stops everything.", flush=True)
        while not stop["now"]:
            for name, process in deployment.processes.items():
                if not process.alive():
                    print(f"{name} exited; last lines of {process.log}:\n{process.tail()}", file=sys.stderr)
                    stop["now"] = True
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except DeploymentError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        deployment.stop()
        return 1
    finally:
        print("Stopping ...", flush=True)
        deployment.stop()
    print(f"Stopped. Everything is kept in {deployment.root}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
