"""The delivery harness of tests/delivery (provider mocks, a real-Redis app,
a worker runtime, an instance with credentials), for the families' end-to-end
tests."""
from tests.delivery.conftest import (  # noqa: F401  (fixtures)
    _apns_server,
    _fcm_server,
    apns_credential,
    apns_key,
    apns_mock,
    data,
    delivery_app,
    delivery_config,
    fcm_key,
    fcm_mock,
    redis_url,
    runtime,
    service_account,
    settings,
    tenant,
    web,
)
