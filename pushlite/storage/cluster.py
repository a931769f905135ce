"""The Redis Cluster client: redis-py's, with FCALL routed by its own keys.

redis-py finds the keys of FCALL (a "movable keys" command) by asking one
fixed node, ``COMMAND GETKEYS``, before every call: a round trip more per
call, and once that node is down every FCALL fails, on every shard. pushlite
declares every key a function touches (``keys.py``), so the slot is read from
the call itself, as redis-py already does for EVALSHA; a dead master then
stops only the calls for its own slots. MOVED, ASK and TRYAGAIN are followed
by redis-py as for any other keyed command.
"""
from __future__ import annotations

from typing import Any, TypeGuard, cast

import redis
from redis.cluster import PRIMARY, ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import ClusterDownError, ConnectionError, RedisClusterException, SlotNotCoveredError

_FUNCTION_CALLS = ("FCALL", "FCALL_RO")


class _RoutesFunctionCalls:
    def get_node(
        self, host: str | None = None, port: int | None = None, node_name: str | None = None
    ) -> ClusterNode | None:
        node = super().get_node(host, port, node_name)  # type: ignore[misc]
        if node is None and node_name and ":" in node_name:
            # An ASK may send a call to a master the client has not met: one
            # added since, taking a slot (it owns none yet, so no slot map
            # lists it). redis-py learns such a node on MOVED only, and on ASK
            # failed with an AttributeError (a 500).
            host, _, port_ = node_name.rpartition(":")
            node = self.nodes_manager.nodes_cache.setdefault(  # type: ignore[attr-defined]
                node_name, ClusterNode(host, int(port_), PRIMARY))
        return node

    def determine_slot(self, *args: Any) -> int | None:
        if args[0] in _FUNCTION_CALLS and len(args) > 3 and int(args[2]) > 0:
            # The first key's slot: all of a call's keys share one hash tag
            # (keys.py), and Redis refuses a call whose keys do not (CROSSSLOT).
            return self.keyslot(args[3])  # type: ignore[attr-defined]
        return super().determine_slot(*args)  # type: ignore[misc]


class ClusterPipe(_RoutesFunctionCalls, ClusterPipeline):
    pass


class Cluster(_RoutesFunctionCalls, RedisCluster):
    # A timeout is not retried: a node that hangs gives its callers a 503
    # after one socket timeout, not after several.
    # (redis-py annotates the attribute as its own 4-tuple, so any other set is refused.)
    ERRORS_ALLOW_RETRY = (ConnectionError, ClusterDownError, SlotNotCoveredError)  # type: ignore[assignment]
    # How long a function call refused while its slot moves is tried again
    # after redis-py gave up (scripts.run), in seconds.
    moving_slot_patience = 1.0

    def pipeline(self, transaction: bool | None = None, shard_hint: None = None) -> ClusterPipe:
        if shard_hint:
            raise RedisClusterException("shard_hint is not supported in cluster mode")
        return ClusterPipe(
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            # A dict, as redis-py's own pipeline() passes it (ClusterPipeline's annotation says list).
            startup_nodes=self.nodes_manager.startup_nodes,  # type: ignore[arg-type]
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=self.retry,
            lock=self._lock,
            transaction=transaction,
            event_dispatcher=self._event_dispatcher,
        )


def is_cluster(client: object) -> TypeGuard[Cluster]:
    """Whether ``client`` is a cluster client (every one pushlite makes is a ``Cluster``)."""
    return isinstance(client, Cluster)


def scan_slot_of(client: Any, key: str, cursor: int, match: str, count: int) -> tuple[int, list[str]]:
    """One SCAN call for keys sharing ``key``'s hash tag: on a Cluster, on
    the master that holds its slot only (redis-py's cluster SCAN asks every
    node and answers a cursor per node)."""
    if not is_cluster(client):
        return client.scan(cursor, match=match, count=count)
    node = client.get_node_from_key(key)
    # redis-py types a cluster's SCAN as one Redis's; its reply has a cursor per node.
    reply = client.scan(cursor, match=match, count=count, target_nodes=node)
    cursors, names = cast("tuple[dict[str, int], list[str]]", reply)
    return cursors[node.name], names


DataClient = redis.Redis | Cluster
"""What pushlite keeps its data in: one Redis (or Sentinel's master), or a Cluster."""
