"""Beams' legacy-shaped FCM payload -> FCM HTTP v1 message."""
from __future__ import annotations

import json

from workers.senders.fcm_message import BodyTemplate, data_value, to_v1_message


def test_notification_title_body_image_stay_in_notification() -> None:
    message = to_v1_message({"notification": {"title": "T", "body": "B", "image": "https://x/i.png"}})
    assert message == {"notification": {"title": "T", "body": "B", "image": "https://x/i.png"}}


def test_other_legacy_notification_keys_go_to_android_notification() -> None:
    legacy = {
        "title": "T", "icon": "ic_bell", "color": "#ff0000", "sound": "ding", "tag": "chat-1",
        "click_action": "OPEN_CHAT", "android_channel_id": "messages", "body_loc_key": "NEW_MSG",
        "body_loc_args": ["Ann"], "title_loc_key": "TITLE", "title_loc_args": ["x"], "unknown_key": 1,
    }
    message = to_v1_message({"notification": legacy})
    assert message["notification"] == {"title": "T"}
    assert message["android"]["notification"] == {
        "icon": "ic_bell", "color": "#ff0000", "sound": "ding", "tag": "chat-1", "click_action": "OPEN_CHAT",
        "channel_id": "messages", "body_loc_key": "NEW_MSG", "body_loc_args": ["Ann"],
        "title_loc_key": "TITLE", "title_loc_args": ["x"],
    }


def test_data_values_become_strings() -> None:
    data = {"s": "text", "n": 42, "f": 1.5, "b": True, "none": None, "obj": {"a": [1, "é"]}}
    message = to_v1_message({"data": data})
    assert message["data"] == {
        "s": "text", "n": "42", "f": "1.5", "b": "true", "none": "null", "obj": '{"a":[1,"é"]}'
    }


def test_delivery_options_map_to_android() -> None:
    message = to_v1_message({"priority": "High", "time_to_live": 3600, "collapse_key": "scores",
                             "restricted_package_name": "com.example"})
    assert message["android"] == {
        "priority": "high", "ttl": "3600s", "collapse_key": "scores", "restricted_package_name": "com.example",
    }


def test_invalid_delivery_options_are_dropped() -> None:
    assert to_v1_message({"priority": "urgent", "time_to_live": -5, "collapse_key": 3}) == {}
    assert to_v1_message({"time_to_live": True}) == {}


def test_v1_blocks_pass_through_and_win_over_mapped_keys() -> None:
    payload = {
        "notification": {"title": "T", "color": "#000000", "sound": "ding"},
        "priority": "normal",
        "android": {"priority": "high", "notification": {"color": "#ffffff"}},
        "apns": {"headers": {"apns-priority": "5"}},
        "webpush": {"headers": {"Urgency": "high"}},
        "fcm_options": {"analytics_label": "x"},
    }
    message = to_v1_message(payload)
    assert message["android"] == {"priority": "high", "notification": {"color": "#ffffff", "sound": "ding"}}
    assert message["apns"] == {"headers": {"apns-priority": "5"}}
    assert message["webpush"] == {"headers": {"Urgency": "high"}}
    assert message["fcm_options"] == {"analytics_label": "x"}
    assert payload["android"] == {"priority": "high", "notification": {"color": "#ffffff"}}  # not mutated


def test_empty_payload_is_an_empty_message() -> None:
    assert to_v1_message({}) == {}
    assert to_v1_message({"notification": {}, "data": {}}) == {}


def test_data_value() -> None:
    assert data_value("x") == "x"
    assert data_value([1, 2]) == "[1,2]"


def test_body_template_splices_the_token() -> None:
    template = BodyTemplate({"data": {"k": "v"}})
    for token in ("abc", 'we"ird\\token'):
        assert json.loads(template.render(token)) == {"message": {"token": token, "data": {"k": "v"}}}
