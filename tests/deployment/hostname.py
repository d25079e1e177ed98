"""
``[core] hostname_callable`` of the deployment suite: each Airflow process says which one it is.

All processes run on one machine, so ``socket.getfqdn()`` would be the same for every Celery
worker; the harness gives each process ``MINERU_DEPLOYMENT_HOSTNAME`` and Airflow records it as
the task instance's ``hostname``, so a test can tell which worker ran a task.
"""

from __future__ import annotations

import os
import socket


def deployment_hostname() -> str:
    """``MINERU_DEPLOYMENT_HOSTNAME`` if set, else the machine's FQDN (Airflow's default)."""
    return os.environ.get("MINERU_DEPLOYMENT_HOSTNAME") or socket.getfqdn()
