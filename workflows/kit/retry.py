"""Retry policies shared by every workflow's activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Reading the calendar or writing the read model never fails for business
# reasons, so those activities retry until they succeed.
LOCAL_SERVICE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))

# The data-sharing platform is someone else's service: retry for a bounded
# time, then ask the applicant for the materials instead of hanging the case.
DATA_SHARING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
)

CALENDAR_TIMEOUT = timedelta(seconds=10)
WRITE_TIMEOUT = timedelta(seconds=30)

# A round of SMS delivery that failed itself (the database away, a worker lost): try it again
# soon. An SMS the gateway refused is no such failure: its row records it and waits its backoff.
SMS_DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=3,
)
