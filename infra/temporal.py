"""The one place a Temporal client is made: the API and the worker both call it.

Its data converter, built from settings by ``build_data_converter``, is pydantic's
with every payload encrypted (infra/codec.py). Failure messages and stack
traces are moved into encrypted attributes too, since an error may quote a form.

Observability rides on the client: with ``settings.otlp_endpoint`` set, Temporal's
TracingInterceptor carries the caller's trace into workflows and activities (a
worker takes it from its client). A worker's client also times its activities
(infra/worker_telemetry.py) and, with ``settings.temporal_metrics_port``, runs on
a runtime that serves the SDK's own ``temporal_…`` series for Prometheus.
"""

from __future__ import annotations

import dataclasses

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from infra.actor_seal import ActorSealSigner, SealKeys
from infra.codec import PayloadEncryptionCodec
from infra.temporal_tls import temporal_tls
from settings import Settings

# One runtime per metrics address and process: each runtime binds its port once.
_metrics_runtimes: dict[str, Runtime] = {}


def build_data_converter(settings: Settings) -> DataConverter:
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=PayloadEncryptionCodec.from_settings(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def client_interceptors(settings: Settings, *, worker: bool = False) -> list[Interceptor]:
    """Actor seals on every Update sent (infra/actor_seal.py); tracing when an OTLP endpoint is
    set; a worker's client also gets the activity telemetry."""
    interceptors: list[Interceptor] = [ActorSealSigner(SealKeys.from_settings(settings))]
    if settings.otlp_endpoint is not None:
        # Imported only when tracing, so that without it nothing of OpenTelemetry's SDK loads.
        from temporalio.contrib.opentelemetry import TracingInterceptor

        interceptors.append(TracingInterceptor())  # the global tracer provider (infra/tracing.py)
    if worker:
        from infra.worker_telemetry import WorkerTelemetryInterceptor

        interceptors.append(WorkerTelemetryInterceptor())
    return interceptors


def sdk_metrics_runtime(settings: Settings) -> Runtime | None:
    """The runtime serving the SDK's Prometheus series on ``temporal_metrics_port``; None when 0 (off)."""
    if not settings.temporal_metrics_port:
        return None
    address = f"{settings.metrics_host}:{settings.temporal_metrics_port}"
    if address not in _metrics_runtimes:
        _metrics_runtimes[address] = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    return _metrics_runtimes[address]


def with_observability(client: Client, settings: Settings, *, worker: bool = False) -> Client:
    """``client``'s connection with the interceptors connect_temporal adds (tracing, worker
    telemetry): for a client made elsewhere, such as a test environment's."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], *client_interceptors(settings, worker=worker)]
    return Client(**config)


async def connect_temporal(settings: Settings, *, worker: bool = False) -> Client:
    """A client for the API (``worker=False``) or for a worker, which alone serves SDK metrics."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=temporal_tls(settings),
        data_converter=build_data_converter(settings),
        interceptors=client_interceptors(settings, worker=worker),
        runtime=sdk_metrics_runtime(settings) if worker else None,
    )
