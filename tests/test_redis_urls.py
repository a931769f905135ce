"""REDIS_URL and PUSHLITE_QUEUE_URL: one Redis, a Cluster, or Sentinel's
master, with TLS, credentials and options; what pushlite refuses to start
with says why."""
from __future__ import annotations

import pytest

import config
from pushlite.storage import urls


def test_one_redis_is_redis_pys_own_syntax():
    target = urls.parse("rediss://:pw@cache.example:6380/2?socket_timeout=3")
    assert (target.kind, target.options["host"], target.options["port"], target.options["db"]) == (
        urls.SINGLE, "cache.example", 6380, 2)
    assert target.options["password"] == "pw" and target.options["socket_timeout"] == 3.0


def test_a_cluster_is_every_node_given():
    target = urls.parse("rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002/?socket_timeout=2")
    assert target.kind == urls.CLUSTER
    assert target.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002))
    assert target.options == {"username": "app", "password": "s@cret", "ssl": True, "socket_timeout": 2.0}
    assert "s@cret" not in repr(target) and "cret" not in repr(target)


def test_sentinel_names_the_service_and_the_database():
    target = urls.parse("redis+sentinel://10.0.1.1:26379,10.0.1.2:26379/mymaster/3?sentinel_password=z")
    assert (target.kind, target.service, target.options["db"]) == (urls.SENTINEL, "mymaster", 3)
    assert target.hosts == (("10.0.1.1", 26379), ("10.0.1.2", 26379))
    assert target.sentinel_options == {"password": "z"} and "sentinel_password" not in target.options
    assert urls.parse("redis+sentinel://s:26379/pushlite").options["db"] == 0


@pytest.mark.parametrize("url, message", [
    ("memcache://x:1", "unsupported Redis URL scheme"),
    ("redis+cluster://", "at least one host:port"),
    ("redis+cluster://a:1,b", "host:port"),
    ("redis+cluster://a:1/3", "only database 0"),
    ("redis+sentinel://a:26379", "service name"),
    ("redis+sentinel://a:26379/master/x", "must be a number"),
])
def test_urls_that_cannot_work_say_why(url, message):
    with pytest.raises(ValueError, match=message):
        urls.parse(url)


def settings(**env: str) -> config.Config:
    return config.Config({"PUSHLITE_ADMIN_TOKEN": "t", "PUSHLITE_ENCRYPTION_KEY":
                          "nAvXMyYq1PtqcKUzldnnEQ5FINvJcmgB3-DbTq8cmtw=", **env})


def test_queues_cannot_be_on_a_cluster():
    with pytest.raises(RuntimeError, match="PUSHLITE_QUEUE_URL: RQ cannot keep its queues on a Redis Cluster"):
        settings(REDIS_URL="redis+cluster://a:7000").validate()
    settings(REDIS_URL="redis+cluster://a:7000", PUSHLITE_QUEUE_URL="redis+sentinel://s:26379/q").validate()


def test_min_replicas_is_a_number_and_not_for_a_cluster():
    assert settings(REDIS_URL="redis://a:1", PUSHLITE_REDIS_MIN_REPLICAS="2").PUSHLITE_REDIS_MIN_REPLICAS == 2
    with pytest.raises(RuntimeError, match="whole number"):
        settings(REDIS_URL="redis://a:1", PUSHLITE_REDIS_MIN_REPLICAS="one")
    with pytest.raises(RuntimeError, match="not with a Redis Cluster"):
        settings(REDIS_URL="redis+cluster://a:1", PUSHLITE_QUEUE_URL="redis://q:1",
                 PUSHLITE_REDIS_MIN_REPLICAS="1").validate()


def test_a_bad_url_stops_the_start_with_its_name():
    with pytest.raises(RuntimeError, match="REDIS_URL: unsupported Redis URL scheme"):
        settings(REDIS_URL="redis+clusters://a:1").validate()
