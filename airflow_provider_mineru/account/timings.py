"""
Queue time (submit → ``running``) and parse time (``running`` → ``done``) of each document, from
the state changes a poller sees (:class:`~airflow_provider_mineru.waiting.polling.StateWatcher`).

Measured where the poller saw the transitions, so at the resolution of the poll interval: a
document first seen ``done`` sends no parse time, a wait that does not know when its documents
were submitted (a resumed task) sends no queue time. A trigger is handed the submit time by the
operator (:meth:`TransitionTimes.handover`) unless the operator's poll before deferring already saw
a document parsing (and sent its queue time): no queue time is sent twice.
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
    :param clock: epoch seconds.
    """

    def __init__(
        self,
        conn_id: str,
        *,
        flavor: str,
        model: str,
        submitted_at: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn_id = conn_id
        self.flavor = flavor
        self.model = model
        self.submitted_at = submitted_at
        self._parsing_seen = False
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
            self._parsing_seen = True
            if self.submitted_at is not None:
                metrics.queue_time(self.conn_id, now - self.submitted_at, **tags)
        elif document.state is MinerUState.DONE and not first_sight and key in self._running_since:
            metrics.parse_time(self.conn_id, now - self._running_since.pop(key), **tags)

    def handover(self) -> float | None:
        """
        The submit time a trigger taking this wait over may count queue times from: None once this
        watcher saw a document parsing (queue times were sent here; the trigger must not send them again).
        """
        return None if self._parsing_seen else self.submitted_at
