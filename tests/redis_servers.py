"""Throwaway Redis deployments on free 127.0.0.1 ports, for the tests and the
benchmarks: one redis-server, a Redis Cluster (three masters with a replica
each, made by ``redis-cli --cluster create``) and a Sentinel setup (a master,
a replica and one sentinel). Nothing is persisted; everything stops with
``stop()`` (the fixtures call it), and a server killed on purpose can be
started again on the same port.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def unsupported_reason() -> str | None:
    """Why the real-Redis deployments cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    version = out.split("v=", 1)[1].split()[0] if "v=" in out else "0"
    if int(version.split(".")[0]) < 7:
        return f"redis-server {version} is too old: pushlite needs Redis 7 (functions)"
    return None


def cluster_unsupported_reason() -> str | None:
    reason = unsupported_reason()
    if reason:
        return reason
    if shutil.which("redis-cli") is None:
        return "redis-cli is not installed (it creates the test cluster)"
    return None


class RedisServer:
    """A real redis-server process the tests can stop, kill, pause and start again."""

    def __init__(self, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="pushlite-redis-")
        self.args = list(args)
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, *self.args]

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            wait_until(client.ping, 10, f"redis-server on port {self.port}", interval=0.02)
        finally:
            client.close()

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, **kwargs)

    def pause(self) -> None:
        assert self.process
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing saved."""
        if self.process:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def stop(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot terminate
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


class ClusterNode(RedisServer):
    def __init__(self) -> None:
        self.bus_port = free_port()
        super().__init__("--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
                         "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0",
                         "--cluster-require-full-coverage", "no", "--cluster-allow-reads-when-down", "no")
        self.args += ["--cluster-config-file", str(Path(self.dir) / "nodes.conf")]

    def node_id(self) -> str:
        return self.client(decode_responses=True).execute_command("CLUSTER", "MYID")

    def role(self) -> str:
        return self.client(decode_responses=True).execute_command("ROLE")[0]


class RedisClusterServers:
    """A Redis Cluster of ``masters`` masters, each with one replica.

    ``url`` is what pushlite's ``REDIS_URL`` takes (``redis+cluster://`` and
    every node). ``add_master`` adds an empty master later, as an operator
    would before a reshard.
    """

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [ClusterNode() for _ in range(masters * 2)]
        self.masters_count = masters

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )
        if created.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}{created.stderr}")
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every live node sees the cluster ok, with every master's replica linked."""
        def healthy() -> bool:
            live = [n for n in self.nodes if n.process]
            for node in live:
                info = node.client(decode_responses=True).execute_command("CLUSTER", "INFO")
                if "cluster_state:ok" not in info:
                    return False
            for node in live:
                role = node.client(decode_responses=True).execute_command("ROLE")
                if role[0] == "slave" and role[3] != "connected":
                    return False
            return True

        wait_until(healthy, timeout, "the test cluster to be healthy", interval=0.1)

    def masters(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process and n.role() == "master"]

    def node_at(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def slot_of(self, key: str) -> int:
        return self.masters()[0].client().execute_command("CLUSTER", "KEYSLOT", key)

    def master_of(self, key: str) -> ClusterNode:
        """The master serving ``key``'s slot (the one that owns it, while it moves)."""
        slot = self.slot_of(key)
        for start, end, owner, *_ in self.masters()[0].client(decode_responses=True).execute_command(
                "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return self.node_at(int(owner[1]))
        raise RuntimeError(f"no master serves {key}")

    def begin_migration(self, slot: int, target: ClusterNode) -> ClusterNode:
        """Mark ``slot`` as moving to ``target`` (MIGRATING / IMPORTING), no key
        moved yet; returns the source."""
        source = next(n for n in self.masters() if slot in self.slots_of(n))
        target.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id())
        source.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id())
        return source

    def migrate_keys(self, slot: int, source: ClusterNode, target: ClusterNode, limit: int | None = None) -> int:
        """Move up to ``limit`` (all) of the slot's keys from source to target."""
        moved = 0
        client = source.client(decode_responses=True)
        while limit is None or moved < limit:
            count = 10 if limit is None else min(10, limit - moved)
            batch = client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, count)
            if not batch:
                break
            client.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *batch)
            moved += len(batch)
        return moved

    def end_migration(self, slot: int, target: ClusterNode) -> None:
        """Finish moving ``slot``: its remaining keys, then every master is told."""
        source = next(n for n in self.masters() if slot in self.slots_of(n))
        if source is not target:
            self.migrate_keys(slot, source, target)
        for node in self.masters():
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id())
        self.wait_healthy()

    def move_slot(self, slot: int, target: ClusterNode) -> None:
        self.begin_migration(slot, target)
        self.end_migration(slot, target)

    def slots_of(self, node: ClusterNode) -> set[int]:
        slots: set[int] = set()
        for start, end, owner, *_ in node.client(decode_responses=True).execute_command("CLUSTER", "SLOTS"):
            if int(owner[1]) == node.port:
                slots.update(range(start, end + 1))
        return slots

    def flush(self) -> None:
        for node in self.masters():
            node.client().flushall()

    def add_master(self) -> ClusterNode:
        node = ClusterNode()
        node.start()
        existing = self.masters()[0]
        subprocess.run(
            ["redis-cli", "--cluster", "add-node", f"127.0.0.1:{node.port}", f"127.0.0.1:{existing.port}"],
            capture_output=True, text=True, timeout=60, check=True,
        )
        self.nodes.append(node)
        wait_until(lambda: all("cluster_state:ok" in n.client(decode_responses=True).execute_command(
            "CLUSTER", "INFO") for n in self.nodes if n.process) and len(
            node.client(decode_responses=True).execute_command("CLUSTER", "NODES").splitlines()) == len(
            self.nodes), 30, "the new node to join")
        return node

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelServers:
    """A master, one replica and one sentinel watching them as ``service``."""

    def __init__(self, service: str = "pushlite") -> None:
        self.service = service
        self.master = RedisServer()
        self.replica = RedisServer("--replicaof", "127.0.0.1", str(self.master.port))
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pushlite-sentinel-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        conf = Path(self.dir) / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 5000\n"
            f"sentinel parallel-syncs {self.service} 1\n"
        )
        self.process = subprocess.Popen(["redis-server", str(conf), "--sentinel"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_replicated()

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)

    def master_address(self) -> tuple[str, int]:
        host, port = self.sentinel().sentinel_get_master_addr_by_name(self.service)
        return host, int(port)

    def current_master(self) -> RedisServer:
        _, port = self.master_address()
        return self.master if self.master.port == port else self.replica

    def current_replica(self) -> RedisServer:
        return self.replica if self.current_master() is self.master else self.master

    def wait_replicated(self, timeout: float = 30) -> None:
        """The sentinel knows the master and its replica, which is in sync."""
        def ready() -> bool:
            state = self.sentinel().sentinel_master(self.service)
            if state.get("num-slaves", 0) < 1 or state.get("is_sdown") or state.get("is_odown"):
                return False
            role = self.current_replica().client(decode_responses=True).execute_command("ROLE")
            return role[0] == "slave" and role[3] == "connected"

        wait_until(ready, timeout, "the sentinel setup", interval=0.1)

    def wait_caught_up(self, timeout: float = 10) -> None:
        """The replica has every write the master has (before a test kills or
        fails over the master: what is not replicated yet is Redis' to lose)."""
        master, replica = self.current_master().client(), self.current_replica().client()

        def caught_up() -> bool:
            offset = master.info("replication")["master_repl_offset"]
            return replica.info("replication").get("slave_repl_offset", -1) >= offset

        wait_until(caught_up, timeout, "the replica to catch up")

    def flush(self) -> None:
        self.current_master().client().flushall()

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(5)
            self.process = None
        self.replica.stop()
        self.master.stop()
