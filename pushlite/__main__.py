"""`python -m pushlite`: run the service on $PORT (default 8000).

Without REDIS_URL it runs embedded: in-process fakeredis, nothing to install,
data kept only while it runs. It creates a `demo` instance and prints what is
needed to try it.
"""
from __future__ import annotations

import sys

from config import Config
from pushlite import encryption, logs, redis_clients
from pushlite.app import create_app
from pushlite.metrics import collectors
from pushlite.metrics import web as web_metrics
from pushlite.storage import instances, vapid


def main() -> None:
    config = Config()
    logs.configure(config.PUSHLITE_LOG_FORMAT, config.PUSHLITE_LOG_LEVEL)
    app = create_app(config)
    if config.PUSHLITE_METRICS_PORT:
        collectors.serve(config.PUSHLITE_METRICS_PORT, lambda: web_metrics.registry_of(app))
    base = f"http://127.0.0.1:{config.PORT}"
    if config.EMBEDDED:
        with app.app_context():
            demo = instances.create(redis_clients.client(), "demo")
            vapid.ensure(redis_clients.client(), encryption.fernet(), demo.id)
        print(
            "pushlite: no REDIS_URL set; running embedded (in-process fakeredis, dry-run delivery, "
            "data lost on exit).\n"
            f"  admin token:        {config.PUSHLITE_ADMIN_TOKEN}\n"
            f"  demo instance id:   {demo.id}\n"
            f"  demo secret key:    {demo.secret_key}\n"
            f"  API docs:           {base}/docs\n"
            f"  console:            {base}/console (log in with the admin token)\n"
            "  register a device:\n"
            f"    curl -s -X POST {base}/device_api/v1/instances/{demo.id}/devices/fcm "
            "-H 'Content-Type: application/json' "
            "-d '{\"token\": \"fcm-demo-token-0123456789abcdef\", \"bundleIdentifier\": \"com.example.app\"}'",
            flush=True,
        )
    else:
        print(f"pushlite: serving {base} with Redis from REDIS_URL", file=sys.stderr, flush=True)
    app.run(host="127.0.0.1" if config.EMBEDDED else "0.0.0.0", port=config.PORT, threaded=True)


if __name__ == "__main__":
    main()
