"""`python -m workers`: an RQ worker for the fan-out and delivery queues (the
Procfile's `worker` line), and the sweep that takes over what dead workers
left (``workers.sweep``). It does not fork per job, so its HTTP/2
connections and provider tokens live as long as the process."""
from __future__ import annotations

from config import Config
from pushlite import logs
from workers.runtime import Runtime, install
from workers.sweep import Sweeper
from workers.worker import run


def main() -> None:
    config = Config()
    config.validate()
    if config.EMBEDDED:
        raise SystemExit("workers need REDIS_URL: the embedded default delivers in-process")
    logs.configure(config.PUSHLITE_LOG_FORMAT, config.PUSHLITE_LOG_LEVEL)
    runtime = Runtime.from_config(config)
    install(runtime)
    sweeper = Sweeper(runtime).start()
    try:
        run(runtime, [runtime.fanout_queue, runtime.delivery_queue])
    finally:
        sweeper.stop()


if __name__ == "__main__":
    main()
