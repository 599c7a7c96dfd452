"""`onething worker` and `onething api`: one service, run in this process until it is stopped."""

from __future__ import annotations

from typing import NoReturn


def run_worker() -> NoReturn:
    import worker

    worker.main()
    worker.exit_without_finalizing()


def run_api() -> None:
    import uvicorn

    from infra.logs import configure_logging
    from settings import get_settings

    settings = get_settings()
    configure_logging(settings)
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,  # keep configure_logging's handlers (JSON, PII masking) for uvicorn's logs too
    )
