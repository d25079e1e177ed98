"""
The emulated ``mineru-api``'s route table: method + path pattern -> handler, checked in order.

Health and tiers are public; every other V1 route needs the API key. A 3.x server has no V1 API:
:func:`no_v1_routes` answers every path with ``other`` (404).
"""

from __future__ import annotations

from mineru_emulator.http import Route, RouteTable
from mineru_emulator.mineru_api.contract import MAX_BODY
from mineru_emulator.mineru_api.responses import MinerUApiResponses

_POST = frozenset({"POST"})
_DELETE = frozenset({"DELETE"})
_TASK = r"/v1/tasks/(?P<arg>[^/]+)"


def mineru_api_routes(responses: MinerUApiResponses) -> RouteTable:
    """
    The V1 route table of one emulator.

    :param responses: the endpoint handlers.
    """
    api = responses.api
    return RouteTable(
        [
            Route("health", r"/v1/health", responses.health),
            Route("tiers", r"/v1/tiers", responses.tiers),
            Route("submit", r"/v1/tasks", api(responses.submit), _POST, max_body=MAX_BODY),
            Route("other", r"/v1/tasks", responses.other),  # GET /v1/tasks: no such route
            Route("result", _TASK + r"/result", api(responses.result)),
            Route("cancel", _TASK, api(responses.cancel), _DELETE),
            Route("get_task", _TASK, api(responses.get_task)),
            Route("file_content", r"/v1/files/(?P<arg>[^/]+)/content", api(responses.file_content)),
        ],
        fallback=Route("other", "", responses.other),
    )


def no_v1_routes(responses: MinerUApiResponses) -> RouteTable:
    """
    The route table of a 3.x server: every request is ``other``.

    :param responses: the endpoint handlers.
    """
    return RouteTable([], fallback=Route("other", "", responses.other))
