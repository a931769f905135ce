"""pushlite: a self-hosted push notification service.

The Flask app lives in `pushlite.app` (`create_app`); `pushlite.storage` has no
Flask dependency so that the RQ workers can share it.
"""
