"""The delivery harness of tests/delivery (a real-Redis app, a worker runtime,
an instance with credentials; the provider mocks come from tests/conftest.py),
for the families' end-to-end tests."""
from tests.delivery.conftest import (  # noqa: F401  (fixtures)
    data,
    delivery_app,
    delivery_config,
    redis_url,
    runtime,
    settings,
    tenant,
    web,
)
