"""
The cloud API's state: tasks, batches, the state machine and the page quota. No HTTP.

Task states are computed lazily from timestamps (:meth:`CloudState.advance`), so no thread runs
per task except the short-lived ones that fetch a document URL, drive a task that has a
callback, or post that callback.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mineru_emulator.callbacks import CallbackDelivery, signed_body
from mineru_emulator.cloud.contract import ApiError, err_msg
from mineru_emulator.faults import FaultBook

TERMINAL_STATES = frozenset({"done", "failed"})


@dataclass
class Timings:
    """
    How long tasks spend in each state, in seconds (computed lazily from timestamps).

    :param pending: time in ``pending`` after submission (or after the upload arrived).
    :param per_page: time in ``running`` per selected page.
    :param converting: time in ``converting``.
    :param fetch_timeout: timeout of the emulator's fetch of a task URL.
    :param callback_backoff: wait before callback retry *n* is ``callback_backoff * n``.
    """

    pending: float = 0.2
    per_page: float = 0.05
    converting: float = 0.1
    fetch_timeout: float = 5.0
    callback_backoff: float = 0.2

    @classmethod
    def fast(cls) -> Timings:
        """Timings for tests: a 3-page document is done in well under 0.1 s."""
        return cls(pending=0.02, per_page=0.005, converting=0.01, fetch_timeout=2.0, callback_backoff=0.02)


@dataclass
class Task:
    task_id: str
    file_name: str
    ext: str
    url: str | None
    batch_id: str | None
    options: dict[str, Any]
    data_id: str | None
    page_ranges: str | None
    zip_id: str
    created: float
    upload_key: str | None = None
    upload_claimed: bool = False
    queued_at: float | None = None  # submit (URL) or upload time; None while waiting for the file
    doc_ready_at: float | None = None  # when the document was fetched/uploaded and inspected
    doc_path: str | None = None
    doc_size: int = 0
    kind: str = "pdf"
    total_pages: int = 0
    selected: list[int] = field(default_factory=list)
    doc_error: str | None = None
    forced_state: str | None = None
    fail_msg: str | None = None
    state: str = "pending"
    running_at: float | None = None
    finished_at: float | None = None
    err_msg: str = ""
    zip_path: str | None = None
    build_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Batch:
    batch_id: str
    task_ids: list[str]


@dataclass
class Limits:
    """
    The account's and the service's limits.

    :param page_quota: pages allowed in total (None = unlimited).
    :param max_file_bytes: largest accepted document.
    :param max_pages: most pages per document.
    :param fetch_demo_urls: try the network for MinerU's public demo URLs first.
    """

    page_quota: int | None
    max_file_bytes: int
    max_pages: int
    fetch_demo_urls: bool


def spawn(target: Callable[..., None], *args: Any) -> None:
    """Run ``target(*args)`` in a daemon worker thread."""
    threading.Thread(target=target, args=args, daemon=True, name="mineru-emulator-worker").start()


class CloudState:
    """
    Every task and batch of one emulator, and the rules that move them.

    Methods whose docstring says "caller holds the lock" expect :attr:`lock` to be held.

    :param lock: the emulator's lock.
    :param timings: state durations.
    :param limits: quota and document limits.
    :param uid: the account uid (callback checksums).
    :param fault_book: the pending ``stick``/``fail_next_tasks`` rules.
    :param callbacks: delivers callbacks.
    :param stop_event: set when the emulator stops.
    :param workdir: a subdirectory of the running emulator's temporary directory.
    :param root_url: ``http://host:port`` of the running emulator.
    :param fetch: fetches a URL task's document in the background, then calls
        :meth:`document_ready` (:func:`~mineru_emulator.cloud.documents.fetch`).
    """

    def __init__(
        self,
        *,
        lock: threading.RLock,
        timings: Timings,
        limits: Limits,
        uid: str,
        fault_book: FaultBook,
        callbacks: CallbackDelivery,
        stop_event: threading.Event,
        workdir: Callable[[str], str],
        root_url: Callable[[], str],
        fetch: Callable[..., None],
    ) -> None:
        self.lock = lock
        self.timings = timings
        self.limits = limits
        self.uid = uid
        self.fault_book = fault_book
        self.callbacks = callbacks
        self.stop_event = stop_event
        self.workdir = workdir
        self.root_url = root_url
        self.fetch = fetch
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        """Forget every task and batch; background work of the old ones stops (caller holds the lock)."""
        self.tasks: dict[str, Task] = {}
        self.active: dict[str, Task] = {}  # not yet terminal, in creation order
        self.batches: dict[str, Batch] = {}
        self.uploads: dict[tuple[str, str], str] = {}  # (batch_id, key) -> task_id
        self.zips: dict[str, str] = {}  # zip_id -> task_id
        self.task_count = 0
        self.batch_count = 0
        self.file_count = 0
        self.pages_used = 0
        self.generation += 1

    # -- creating tasks and batches --------------------------------------------------------------

    def new_task(
        self,
        *,
        file_name: str,
        ext: str,
        url: str | None,
        batch_id: str | None,
        options: dict[str, Any],
    ) -> Task:
        """Create a task (caller holds the lock) and apply pending stick/fail rules."""
        task = Task(
            task_id=str(uuid.uuid4()),
            file_name=file_name,
            ext=ext,
            url=url,
            batch_id=batch_id,
            options=options,
            data_id=options["data_id"],
            page_ranges=options["page_ranges"],
            zip_id=str(uuid.uuid4()),
            created=time.time(),
        )
        task.forced_state, task.fail_msg = self.fault_book.rules_for([text for text in (url, file_name) if text])
        task.state = task.forced_state or ("pending" if url else "waiting-file")
        self.tasks[task.task_id] = task
        self.active[task.task_id] = task
        self.zips[task.zip_id] = task.task_id
        self.file_count += 1
        if url:
            task.queued_at = task.created
            self.start_fetch(task)
        return task

    def submit_task(self, *, file_name: str, ext: str, url: str, options: dict[str, Any]) -> Task:
        """A single-URL task, its fetch started."""
        with self.lock:
            self.check_quota()
            task = self.new_task(file_name=file_name, ext=ext, url=url, batch_id=None, options=options)
            self.task_count += 1
        return task

    def submit_batch(
        self, options: dict[str, Any], files: list[dict[str, Any]], *, upload: bool
    ) -> tuple[str, list[Task]]:
        """
        A batch: its URL tasks' fetches started, or its upload tasks waiting for their files.

        :param options: the batch-level options.
        :param files: the checked ``files`` items (with ``file_name``, ``ext`` and ``url`` or not).
        :param upload: the files will be uploaded (each task gets an upload key).
        :return: the batch id and its tasks, in the order of ``files``.
        """
        with self.lock:
            self.check_quota()
            batch = Batch(str(uuid.uuid4()), [])
            tasks: list[Task] = []
            for item in files:
                task = self.new_task(
                    file_name=item["file_name"],
                    ext=item["ext"],
                    url=None if upload else item["url"],
                    batch_id=batch.batch_id,
                    options=_file_options(options, item),
                )
                if upload:
                    task.upload_key = f"{uuid.uuid4()}{item['ext']}"
                    self.uploads[(batch.batch_id, task.upload_key)] = task.task_id
                batch.task_ids.append(task.task_id)
                tasks.append(task)
            self.batches[batch.batch_id] = batch
            self.batch_count += 1
        return batch.batch_id, tasks

    def check_quota(self) -> None:
        """Raise ``-60017`` when the page quota is used up (caller holds the lock)."""
        quota = self.limits.page_quota
        if quota is not None:
            self.advance_for_request([])
            if self.pages_used >= quota:
                raise ApiError(-60017, f"all {quota} pages of the quota are used")

    # -- the state machine -----------------------------------------------------------------------

    def _selected_count(self, task: Task) -> int:
        return max(1, len(task.selected))

    def _finish(self, task: Task, state: str, at: float, err_msg: str = "") -> None:
        task.state = state
        task.err_msg = err_msg
        task.finished_at = at
        self.active.pop(task.task_id, None)
        if task.options.get("callback"):
            spawn(self._send_callback, task.task_id, self.task_view(task))

    def advance(self, task: Task, now: float) -> None:
        """Move ``task`` through every transition whose time has come (caller holds the lock)."""
        if task.state in TERMINAL_STATES:
            return
        if task.forced_state is not None:
            task.state = task.forced_state
            return
        if task.queued_at is None:
            task.state = "waiting-file"
            return
        run_at = task.queued_at + self.timings.pending
        if task.doc_ready_at is None or now < run_at:
            task.state = "pending"
            return
        if task.running_at is None:
            start = max(run_at, task.doc_ready_at)
            if task.doc_error is not None:
                self._finish(task, "failed", start, task.doc_error)
                return
            quota = self.limits.page_quota
            if quota is not None:
                pages = self._selected_count(task)
                left = quota - self.pages_used
                if pages > left:
                    detail = f"the task needs {pages} pages, {max(left, 0)} of {quota} remain"
                    self._finish(task, "failed", start, err_msg(-60017, detail))
                    return
                self.pages_used += pages
            task.running_at = start
        converting_at = task.running_at + self.timings.per_page * self._selected_count(task)
        if now < converting_at:
            task.state = "running"
            return
        done_at = converting_at + self.timings.converting
        if now < done_at:
            task.state = "converting"
            return
        if task.fail_msg is not None:
            self._finish(task, "failed", done_at, task.fail_msg)
        else:
            self._finish(task, "done", done_at)

    def advance_for_request(self, tasks: Iterable[Task]) -> None:
        """Advance the tasks a request looks at (all active ones when a page quota is set)."""
        now = time.time()
        if self.limits.page_quota is not None:
            # Quota is charged as tasks start running: advance everything in start order.
            tasks = sorted(
                self.active.values(),
                key=lambda t: (t.queued_at is None, (t.queued_at or 0.0), t.created),
            )
        for task in list(tasks):
            self.advance(task, now)

    def _next_wakeup(self, task: Task, now: float) -> float:
        """Seconds until ``task`` may change state next (for callback drivers)."""
        if task.queued_at is None or task.doc_ready_at is None:
            return 0.02
        if task.running_at is None:
            target = task.queued_at + self.timings.pending
        else:
            converting_at = task.running_at + self.timings.per_page * self._selected_count(task)
            target = converting_at if now < converting_at else converting_at + self.timings.converting
        return min(1.0, max(0.002, target - now + 0.001))

    def task_view(self, task: Task, *, batch: bool = False, root: str | None = None) -> dict[str, Any]:
        """
        The ``data`` of a task-state answer (or one ``extract_result`` item with ``batch``).

        ``root`` is the ``http://host:port`` for ``full_zip_url`` (the request's Host by default).
        """
        view: dict[str, Any] = {"file_name": task.file_name} if batch else {"task_id": task.task_id}
        if task.data_id is not None:
            view["data_id"] = task.data_id
        view["state"] = task.state
        view["err_msg"] = task.err_msg if task.state == "failed" else ""
        if task.state == "done":
            view["full_zip_url"] = f"{root or self.root_url()}/cdn/pdf/{task.zip_id}.zip"
        if task.state == "running":
            started = task.running_at or task.created
            if task.forced_state is not None or task.running_at is None:
                extracted = 0
            else:
                elapsed = time.time() - task.running_at
                per_page = self.timings.per_page or 1e-9
                extracted = min(self._selected_count(task), int(elapsed / per_page))
            view["extract_progress"] = {
                "extracted_pages": extracted,
                "total_pages": task.total_pages,
                "start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            }
        return view

    # -- documents arriving ----------------------------------------------------------------------

    def doc_path(self, task: Task) -> str:
        """Where a task's document is stored."""
        return os.path.join(self.workdir("docs"), f"{task.task_id}{task.ext}")

    def start_fetch(self, task: Task) -> None:
        """Fetch a URL task's document in a worker thread (caller holds the lock)."""
        spawn(self.fetch, self, task.task_id, self.generation, task.url, self.doc_path(task))

    def document_ready(self, task_id: str, generation: int, info: dict[str, Any], *, queue: bool) -> None:
        """
        Record a fetched or uploaded document's inspection.

        :param task_id: the task.
        :param generation: the generation the document was requested in (a reset drops it).
        :param info: the task fields :func:`~.documents.inspect_document` returned.
        :param queue: the task is queued now (uploads; a URL task was queued at submission).
        """
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or generation != self.generation:
                return
            for key, value in info.items():
                setattr(task, key, value)
            now = time.time()
            task.doc_ready_at = now
            if queue:
                task.queued_at = now
                if task.forced_state is None:
                    task.state = "pending"
            needs_driver = bool(task.options.get("callback")) and task.forced_state is None
        if needs_driver:
            spawn(self._drive, task_id, generation)

    # -- callbacks -------------------------------------------------------------------------------

    def _drive(self, task_id: str, generation: int) -> None:
        """Advance a task with a callback until it ends, so the callback fires unpolled."""
        while not self.stop_event.is_set():
            with self.lock:
                task = self.tasks.get(task_id)
                if task is None or generation != self.generation:
                    return
                now = time.time()
                self.advance_for_request([task])
                if task.state in TERMINAL_STATES or task.forced_state is not None:
                    return
                wait = self._next_wakeup(task, now)
            self.stop_event.wait(wait)

    def _send_callback(self, task_id: str, view: dict[str, Any]) -> None:
        """POST the terminal state to the task's callback URL (worker thread)."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return
            generation = self.generation
            url = task.options["callback"]
            seed = task.options.get("seed") or ""
        body = signed_body(view, self.uid, seed)
        self.callbacks.deliver(url, body, task_id, lambda: generation == self.generation)


def _file_options(options: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A batch file's options: the batch's, with the file's own ``is_ocr``, ``data_id`` and ``page_ranges``."""
    merged = dict(options)
    if item.get("is_ocr") is not None:
        merged["is_ocr"] = item["is_ocr"]
    merged["data_id"] = item["data_id"]
    merged["page_ranges"] = item["page_ranges"]
    return merged
