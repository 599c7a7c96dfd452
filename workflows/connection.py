"""The one place a Temporal client is made: the API and the worker both call it.

Its data converter, built from settings by ``build_data_converter``, is pydantic's
with every payload encrypted (workflows/codec.py). Failure messages and stack
traces are moved into encrypted attributes too, since an error may quote a form.
"""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from settings import Settings
from workflows.codec import PayloadEncryptionCodec


def build_data_converter(settings: Settings) -> DataConverter:
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=PayloadEncryptionCodec.from_settings(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect_temporal(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=build_data_converter(settings),
    )
