"""The baseline for `register_throughput.py`: the least a Flask JSON endpoint does.

One POST route that parses the JSON body and answers a small JSON dict, served
by the same gunicorn settings as pushlite (`gunicorn bench.minimal_app:app`).
"""
from flask import Flask, request

app = Flask(__name__)


@app.post("/register")
def register():
    body = request.get_json()
    return {"id": "0123456789ab", "initialInterestSet": [], "received": len(body)}
