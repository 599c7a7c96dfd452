"""Fault injection for the fault-injection tests: crash the API process on purpose.

``ONETHING_FAULT_CRASH_AT`` names a point of a request's handling where the process
exits at once (``os._exit``: no response, no cleanup, as after a SIGKILL or a power
cut), so a test can show what a client's retry finds afterwards. Settings refuse it
in production; unset, ``crash_if_injected`` does nothing.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

from settings import Settings

CrashPoint = Literal["before_case_start", "after_case_start"]

# Distinct from any exit status uvicorn uses, so a test can tell the crash was ours.
CRASH_EXIT_STATUS = 75

logger = logging.getLogger(__name__)


def crash_if_injected(settings: Settings, point: CrashPoint) -> None:
    """Exit the process now if ``settings`` asks for a crash at ``point``."""
    if settings.fault_crash_at != point:
        return
    logger.critical("fault injection: the API process exits at %s", point)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(CRASH_EXIT_STATUS)
