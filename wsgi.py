"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""
import gc

from pushlite.app import create_app

app = create_app()
# Everything loaded so far lives as long as the process: keep it out of the
# garbage collector's way, so that collections triggered by requests are cheap.
gc.freeze()
