"""
Queue time (submit → ``running``) and parse time (``running`` → ``done``) of each document, from
the state changes a poller sees (:class:`~airflow_provider_mineru.waiting.polling.StateWatcher`).

Measured where the poller saw the transitions, so at the resolution of the poll interval: a
document first seen ``done`` sends no parse time, a wait that does not know when its documents
were submitted (a resumed task) sends no queue time. A trigger knows (the operator hands the submit
time over) but counts a queue time only for a document it saw queued first: one it first sees
parsing may already have been counted by the operator's poll before deferring.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from airflow_provider_mineru.account import metrics
from airflow_provider_mineru.models import DocumentResult, MinerUState

#: The states of a document that MinerU is parsing.
_PARSING = (MinerUState.RUNNING, MinerUState.CONVERTING)


class TransitionTimes:
    """
    A poller's :class:`~airflow_provider_mineru.waiting.polling.StateWatcher` sending ``mineru.queue_time``
    and ``mineru.parse_time``.

    :param conn_id: the connection (a tag).
    :param flavor: its ``api_flavor`` (a tag).
    :param model: the ``model_version`` (a tag).
    :param submitted_at: when the documents were submitted (epoch seconds); None: not known here
        (no queue time is sent).
    :param count_first_sight: a document first seen parsing sends its queue time (False in a trigger:
        the operator's poll before deferring may have sent it).
    :param clock: epoch seconds.
    """

    def __init__(
        self,
        conn_id: str,
        *,
        flavor: str,
        model: str,
        submitted_at: float | None,
        count_first_sight: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn_id = conn_id
        self.flavor = flavor
        self.model = model
        self.submitted_at = submitted_at
        self.count_first_sight = count_first_sight
        self._clock = clock
        self._running_since: dict[str, float] = {}
        self._seen: set[str] = set()

    def saw(self, key: str, document: DocumentResult) -> None:
        """One document changed state: send a time when a transition was seen whole."""
        now = self._clock()
        first_sight = key not in self._seen
        self._seen.add(key)
        tags = {"flavor": self.flavor, "model": self.model}
        if document.state in _PARSING and key not in self._running_since:
            self._running_since[key] = now
            if self.submitted_at is not None and (self.count_first_sight or not first_sight):
                metrics.queue_time(self.conn_id, now - self.submitted_at, **tags)
        elif document.state is MinerUState.DONE and not first_sight and key in self._running_since:
            metrics.parse_time(self.conn_id, now - self._running_since.pop(key), **tags)
