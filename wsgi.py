"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""
import gc

from config import Config
from pushlite import logs
from pushlite.app import create_app

config = Config()
logs.configure(config.PUSHLITE_LOG_FORMAT, config.PUSHLITE_LOG_LEVEL)
app = create_app(config)
# Everything loaded so far lives as long as the process: keep it out of the
# garbage collector's way, so that collections triggered by requests are cheap.
gc.freeze()
