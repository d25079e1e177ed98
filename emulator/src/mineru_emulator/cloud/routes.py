"""
The cloud API's route table: method + path pattern -> handler, checked in order.

``<prefix>`` is the emulator's API prefix (``/api/v4`` by default). The storage paths
(``/api-upload``, ``/cdn``), the samples and the admin API are outside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mineru_emulator.admin import ADMIN_PATH
from mineru_emulator.cloud.responses import CloudResponses, sample
from mineru_emulator.http import Handler, Route, RouteTable

_GET = frozenset({"GET"})
_POST = frozenset({"POST"})


def cloud_routes(prefix: str, responses: CloudResponses, admin: Handler) -> RouteTable:
    """
    The route table of one emulator.

    :param prefix: the API prefix (``""`` or ``/segment...`` without a trailing slash).
    :param responses: the endpoint handlers.
    :param admin: the admin API's handler.
    """
    api: Callable[[Callable[..., None]], Handler] = responses.api
    p = re.escape(prefix)
    return RouteTable(
        [
            Route("admin", re.escape(ADMIN_PATH) + r"(?:/+(?P<arg>.*?))?/*", admin, faultable=False),
            Route("sample", r"/samples(?:/+(?P<arg>.*?))?/*", sample),
            Route("upload", r"/api-upload/(?P<arg>.*)", responses.upload, streams_body=True),
            Route("download", r"/cdn/pdf/(?P<arg>.*)\.zip", responses.download),
            Route("submit_task", p + r"/extract/task/*", api(responses.submit_task), _POST),
            # Before submit_batch: GET .../extract/task/batch asks for a task whose id is "batch".
            Route("get_task", p + r"/extract/task/(?P<arg>[^/]+)/*", api(responses.get_task), _GET),
            Route("submit_batch", p + r"/extract/task/batch/*", api(responses.submit_batch), _POST),
            Route("file_urls", p + r"/file-urls/batch/*", api(responses.file_urls), _POST),
            Route("get_batch", p + r"/extract-results/batch/(?P<arg>[^/]+)/*", api(responses.get_batch), _GET),
        ],
        fallback=Route("other", "", responses.other),
    )
