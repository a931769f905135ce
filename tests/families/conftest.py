"""The delivery harness of tests/delivery (a real-Redis app, a worker runtime,
an instance with credentials; the provider mocks come from tests/conftest.py),
for the families' end-to-end tests, plus local Matrix push gateways that the
app may send to."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

import config
from tests.delivery.conftest import (  # noqa: F401  (fixtures)
    data,
    delivery_app,
    runtime,
    settings,
    tenant,
    web,
)
from tests.mocks.matrix_gateway import MatrixGatewayMock

# Gateway URLs the families' delivery tests may name: the local mocks.
LOCAL_GATEWAYS = "http://127.0.0.1:*/*, http://localhost:*/*"


@pytest.fixture
def delivery_config(delivery_deployment, apns_mock, fcm_mock) -> config.TestingConfig:
    return delivery_deployment.config(
        PUSHLITE_DRY_RUN=False,
        PUSHLITE_APNS_ENDPOINT=apns_mock.url,
        PUSHLITE_FCM_ENDPOINT=fcm_mock.url,
        PUSHLITE_MATRIX_GATEWAY_ALLOWLIST=LOCAL_GATEWAYS,
    )


@pytest.fixture(scope="session")
def gateways() -> Iterator[tuple[MatrixGatewayMock, MatrixGatewayMock]]:
    with MatrixGatewayMock() as first, MatrixGatewayMock() as second:
        yield first, second


@pytest.fixture
def gateway(gateways) -> MatrixGatewayMock:
    for mock in gateways:
        mock.reset()
    return gateways[0]


@pytest.fixture
def other_gateway(gateways, gateway) -> MatrixGatewayMock:
    return gateways[1]
