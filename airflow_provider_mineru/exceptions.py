"""
Typed errors raised by the MinerU provider.

Every error from the API becomes one subclass of :class:`MinerUError`, chosen by MinerU's error
code (see :data:`ERROR_CODE_CLASSES`) or, when the body carries no code, by the HTTP status.
Each keeps MinerU's ``code``, ``message`` and ``trace_id`` and the HTTP status so a failed
Airflow task says exactly what MinerU said.

Which errors are retried is decided by class: only :class:`MinerUTransientError` (and its
subclasses) is retried by the hook; everything else fails at once. Invalid requests (and
client-side validation errors) are ``AirflowFailException`` too, so Airflow does not retry a task
that can only fail the same way.
"""

from __future__ import annotations

from typing import Any

# The two exception classes only, not ``version_compat`` (which imports BaseOperator, object
# storage and more): a triggerer imports this with the trigger class, on its event loop.
try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2.11
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef]


class MinerUError(AirflowException):
    """
    Base class of every error raised by this provider.

    :param message: MinerU's message (or ours, for client-side errors).
    :param code: MinerU's error code as a string (``"A0202"``, ``"-60012"``), or None.
    :param trace_id: MinerU's request id, when the response carried one.
    :param http_status: the HTTP status of the response, when there was one.
    """

    #: Whether the hook retries this error with backoff.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | int | None = None,
        trace_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.message = message
        self.code = None if code is None else str(code)
        self.trace_id = trace_id or None
        self.http_status = http_status
        super().__init__(self._format())

    def _format(self) -> str:
        head = f"MinerU error {self.code}: {self.message}" if self.code else f"MinerU error: {self.message}"
        details = []
        if self.trace_id:
            details.append(f"trace_id={self.trace_id}")
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        return f"{head} ({', '.join(details)})" if details else head

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON describing the error, for trigger events (see :func:`error_from_dict`)."""
        return {
            "class": type(self).__name__,
            "message": self.message,
            "code": self.code,
            "trace_id": self.trace_id,
            "http_status": self.http_status,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the keyword-only fields through pickling (Celery, subprocesses).
        return (_rebuild_error, (type(self), self.message, self.__dict__.copy()))


def _rebuild_error(cls: type[MinerUError], message: str, state: dict[str, Any]) -> MinerUError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    error.args = (error._format(),)
    return error


class MinerUAuthError(MinerUError):
    """The token is missing, wrong or expired, or the task belongs to another account."""


class MinerUQuotaError(MinerUError):
    """A quota is used up (pages per day, tasks per day): waiting or a new plan helps, retrying does not."""


class MinerUBudgetExhaustedError(MinerUQuotaError):
    """
    The connection's daily budget (``daily_page_budget`` / ``daily_file_budget``) cannot hold the
    documents and ``on_budget_exhausted="fail"``: raised before any request, nothing reserved.

    :param resets_at: when the budget resets (the next UTC midnight).
    """

    def __init__(self, message: str, *, resets_at: Any = None, **kwargs: Any) -> None:
        self.resets_at = resets_at
        super().__init__(message, **kwargs)


class MinerUInvalidRequestError(MinerUError, AirflowFailException):
    """
    The request or the document is not acceptable; the same request will fail again.

    It is also an ``AirflowFailException``: the Airflow task fails without spending its retries.
    """


class MinerUValidationError(MinerUInvalidRequestError, ValueError):
    """
    A client-side check failed before anything was sent, so no quota was spent.

    :param field: the argument or file field at fault (``data_id``, ``files[3].name``).
    :param value: the offending value (never a secret).
    :param limit: the rule or limit it broke, in words.
    """

    def __init__(self, field: str, value: object, limit: str) -> None:
        self.field = field
        self.value = value
        self.limit = limit
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        super().__init__(f"invalid {field}={shown}: {limit}")

    def _format(self) -> str:
        return f"MinerU request not sent: {self.message}"


class MinerUCannotSplitError(MinerUInvalidRequestError):
    """
    A document over MinerU's page limit that the provider will not split (its PDF structure cannot be
    read safely, or ``split_long_documents`` is False); the message names the file, the limit and what
    to do. The same document fails again, so the task fails without spending its retries.
    """


class MinerUUploadURLExpiredError(MinerUInvalidRequestError):
    """A presigned upload URL is past its validity (24 h); new URLs must be requested."""


class MinerUNotFoundError(MinerUError):
    """The task or batch id is unknown to MinerU (``-60012``)."""


class MinerUTaskFailedError(MinerUError):
    """MinerU accepted the document but could not parse or export it (state ``failed``, ``-60010``)."""


class MinerUTransientError(MinerUError):
    """
    A temporary failure (HTTP 429/5xx, busy service, connection reset, time-out); retried with backoff.

    :param retry_after: seconds the server asked us to wait (``Retry-After``), when it said so.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class MinerUProtocolError(MinerUTransientError):
    """The response was not MinerU's JSON envelope (a proxy's HTML page, truncated or malformed JSON)."""


class MinerUConnectionError(MinerUTransientError):
    """The request did not get a response: connection refused or reset, or a time-out."""


class MinerUAmbiguousSubmitError(MinerUConnectionError):
    """
    A submit (``POST /extract/task`` or ``/extract/task/batch``) was sent but its answer was lost
    (a read time-out or a reset after sending, a cut-short or unreadable ``200`` body).

    MinerU may have accepted it, so the hook does not send it again: a blind retry could pay for
    the same documents several times. The Airflow task fails (and retries, if ``retries`` allows):
    a lost answer costs at most one duplicate task, never ``max_retries`` of them.

    :param documents: the ``data_id`` (else the file name) of every document of the submit.
    """

    retryable = False  # never re-sent by the hook; an Airflow retry may submit once more
    ambiguous = True  # the request may have reached MinerU

    def __init__(self, message: str, *, documents: list[str] | None = None, **kwargs: Any) -> None:
        self.documents = list(documents or [])
        super().__init__(message, **kwargs)


class MinerURefusedResponseError(MinerUError):
    """
    An answer the provider refuses to act on, and does not retry: a redirect of an API call or an
    upload, an answer larger than the read bound, or a URL in an answer whose scheme is not http(s).
    """


class MinerUResultError(MinerUError):
    """A result zip could not be downloaded or extracted safely."""


class UnsafeResultZipError(MinerUResultError):
    """A result zip is hostile: it tried to escape the target folder or to exhaust disk or memory."""


class MinerUWaitTimeoutError(MinerUError):
    """A document or batch did not reach a terminal state before the operator's or sensor's timeout."""


#: MinerU error code -> error class, from the API reference, its republished copy, and the
#: codes the live service's later docs add. Codes not listed fall back to the HTTP status.
ERROR_CODE_CLASSES: dict[str, type[MinerUError]] = {
    # auth
    "A0202": MinerUAuthError,
    "A0211": MinerUAuthError,
    "-60013": MinerUAuthError,
    # invalid request / bad input
    "-500": MinerUInvalidRequestError,
    "-10002": MinerUInvalidRequestError,
    "-60002": MinerUInvalidRequestError,
    "-60003": MinerUInvalidRequestError,
    "-60004": MinerUInvalidRequestError,
    "-60005": MinerUInvalidRequestError,
    "-60006": MinerUInvalidRequestError,
    "-60008": MinerUInvalidRequestError,
    "-60011": MinerUInvalidRequestError,
    "-60014": MinerUInvalidRequestError,
    "-60015": MinerUInvalidRequestError,
    # not found
    "-60012": MinerUNotFoundError,
    # task failure
    "-60010": MinerUTaskFailedError,
    "-60016": MinerUTaskFailedError,
    # quota
    "-60017": MinerUQuotaError,
    "-60018": MinerUQuotaError,
    "-60019": MinerUQuotaError,
    # transient
    "-10001": MinerUTransientError,
    "-60001": MinerUTransientError,
    "-60007": MinerUTransientError,
    "-60009": MinerUTransientError,
    "-60020": MinerUTransientError,
    "-60021": MinerUTransientError,
    "-60022": MinerUTransientError,
}


def error_class_for(code: str | None, http_status: int | None) -> type[MinerUError]:
    """Pick the error class for a MinerU code, falling back to the HTTP status when the code is unknown."""
    if code is not None and code in ERROR_CODE_CLASSES:
        return ERROR_CODE_CLASSES[code]
    if http_status is not None:
        if http_status == 429 or http_status >= 500:
            return MinerUTransientError
        if http_status in (401, 403):
            return MinerUAuthError
        if http_status == 404:
            return MinerUNotFoundError
        if 400 <= http_status < 500:
            return MinerUInvalidRequestError
    return MinerUError


def error_from_dict(data: dict[str, Any]) -> MinerUError:
    """Rebuild an error sent through a trigger event by :meth:`MinerUError.to_dict`."""
    classes = {cls.__name__: cls for cls in _all_error_classes(MinerUError)}
    error_class = classes.get(str(data.get("class")), MinerUError)
    if issubclass(error_class, MinerUValidationError):
        error_class = MinerUInvalidRequestError
    return error_class(
        str(data.get("message") or "unknown error"),
        code=data.get("code"),
        trace_id=data.get("trace_id"),
        http_status=data.get("http_status"),
    )


def _all_error_classes(base: type[MinerUError]) -> list[type[MinerUError]]:
    found = [base]
    for sub in base.__subclasses__():
        found.extend(_all_error_classes(sub))
    return found
