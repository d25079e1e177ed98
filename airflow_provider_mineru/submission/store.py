"""
What a task try submitted, kept where the next try of the same task instance can find it.

A retry must resume waiting on the MinerU task or batch an earlier try created, not spend quota
again. XCom cannot carry that (Airflow clears a task's XCom when a new try starts), so:

- on Airflow 3.3+ the record goes to ``task_state_store``, which exists for exactly this and
  survives retries;
- on older Airflow (2.11, 3.0-3.2) it goes to an Airflow Variable named
  ``mineru_submission/<dag_id>/<run_id>/<task_id>/<map_index>``, deleted when the task finishes.

The record is a :class:`~airflow_provider_mineru.submission.record.Submission`, sealed with a MAC made
from the connection's API token. :meth:`SubmissionStore.load_submission` returns it only when the
MAC holds and it names this very task instance: a record written by hand, copied from another
task, or left by an older provider version is ignored (and logged), never resumed.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from airflow.providers.common.compat.sdk import Variable

from airflow_provider_mineru.submission.record import Identity, Submission

log = logging.getLogger(__name__)

STATE_KEY = "mineru_submission"
_VARIABLE_KEY_LIMIT = 250


class SubmissionStore:
    """
    Load, save and clear the submission record of one task instance.

    :param context: the Airflow task context.
    """

    def __init__(self, context: Any) -> None:
        self._state_store = context.get("task_state_store")
        ti = context.get("ti") or context.get("task_instance")
        run_id = context.get("run_id") or getattr(ti, "run_id", "")
        map_index = getattr(ti, "map_index", -1)
        if map_index is None:
            map_index = -1
        key = f"{STATE_KEY}/{getattr(ti, 'dag_id', '')}/{run_id}/{getattr(ti, 'task_id', '')}/{map_index}"
        if len(key) > _VARIABLE_KEY_LIMIT:
            key = f"{STATE_KEY}/{hashlib.sha256(key.encode()).hexdigest()}"
        self.variable_key = key

    @property
    def backend(self) -> str:
        """``task_state_store`` (Airflow 3.3+) or ``Airflow Variable <key>``."""
        return "task_state_store" if self._state_store is not None else f"Airflow Variable {self.variable_key}"

    def load(self) -> dict[str, Any] | None:
        """The record an earlier try saved, or None."""
        try:
            if self._state_store is not None:
                value = self._state_store.get(STATE_KEY)
            else:
                value = Variable.get(self.variable_key, deserialize_json=True)
        except KeyError:
            return None
        except Exception as exc:  # the store being unreachable must not block a first try
            log.warning("Could not read the MinerU submission record (%s): %s", self.backend, exc)
            return None
        return value if isinstance(value, dict) else None

    def save(self, record: dict[str, Any]) -> None:
        """Keep ``record`` (plain JSON) for later tries."""
        try:
            if self._state_store is not None:
                self._state_store.set(STATE_KEY, record)
            else:
                Variable.set(
                    self.variable_key,
                    record,
                    serialize_json=True,
                    description="MinerU submission of a running task; lets a retry resume (deleted when done).",
                )
        except Exception as exc:
            log.warning(
                "Could not save the MinerU submission record (%s): %s; a retry of this task would resubmit.",
                self.backend,
                exc,
            )

    def clear(self) -> None:
        """Forget the record (the task has finished)."""
        try:
            if self._state_store is not None:
                self._state_store.delete(STATE_KEY)
            else:
                Variable.delete(self.variable_key)
        except Exception as exc:
            log.debug("Could not clear the MinerU submission record: %s", exc)

    def load_submission(self, identity: Identity, key: str | None) -> Submission | None:
        """
        The earlier try's :class:`~airflow_provider_mineru.submission.record.Submission`, or None.

        :param identity: the running task instance; a record naming another one is ignored.
        :param key: the API token the record was sealed with.
        """
        raw = self.load()
        if raw is None:
            return None
        submission, why = Submission.unseal(raw, key)
        if submission is None:
            log.warning("Ignoring the MinerU submission record in the %s: %s.", self.backend, why)
            return None
        if submission.identity != identity:
            log.warning(
                "Ignoring the MinerU submission record in the %s: it belongs to another task instance (%s).",
                self.backend,
                submission.identity,
            )
            return None
        return submission

    def save_submission(self, submission: Submission, key: str | None) -> None:
        """Keep ``submission``, sealed with ``key`` (the API token), for later tries."""
        self.save(submission.sealed(key))
