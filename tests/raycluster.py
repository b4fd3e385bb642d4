"""A multi-node Ray cluster on this machine, every port of it on 127.0.0.1.

Ray binds each node to the machine's interface address, never to loopback alone. So the cluster
runs inside a network namespace of its own (``unshare --net``, which needs root) whose only
interface is ``lo``: whatever Ray binds there is 127.0.0.1, and :meth:`Namespace.listening`
lets a test check it. The head and each worker node are separate ``ray start`` processes,
as on real machines, each with its own home directory (where Ray keeps its auth token).

The databases stay outside. :meth:`Namespace.forward` carries a TCP port of 127.0.0.1 into
the namespace with two ``socat`` processes joined by a Unix socket (the file system is shared
across network namespaces), so a database URL reads the same inside and out.

Every process started here is ended by its pid: the namespace's processes are found by their
network namespace (:meth:`Namespace.pids`), never by name, as ``ray stop`` would.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAD_PORT = 6379
CLIENT_PORT = 10001
CLUSTER_ADDRESS = f"127.0.0.1:{HEAD_PORT}"
CLIENT_ADDRESS = f"ray://127.0.0.1:{CLIENT_PORT}"
#: Where each tool comes from on Debian (.ci/run installs the missing ones).
TOOLS = {"unshare": "util-linux", "nsenter": "util-linux", "ip": "iproute2", "socat": "socat"}
#: Proctitle of a Ray worker process while it runs a batch (ray_executor._batch_task).
BATCH_TASK = b"ray::_batch_task"
_LISTEN = "0A"  # TCP state in /proc/net/tcp


class ClusterUnavailable(RuntimeError):
    """This machine cannot host the loopback cluster (not root, a tool missing)."""


def require_tools() -> None:
    """Raise :class:`ClusterUnavailable` with the reason, when the cluster cannot run here."""
    if os.geteuid() != 0:
        raise ClusterUnavailable(
            "the loopback Ray cluster needs root, to make a network namespace (unshare --net); "
            "run the suite as root, as .ci/run does"
        )
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise ClusterUnavailable(
                f"the loopback Ray cluster needs `{tool}` (Debian package {package}); "
                ".ci/run installs it"
            )


def _net_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:  # gone, or a kernel thread
        return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[1])


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address of /proc/net/tcp{,6}: 32-bit words, each in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(swapped)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _stop_all(pids: Sequence[int]) -> None:
    """SIGTERM, then SIGKILL what is still there after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


class Namespace:
    """A network namespace whose only interface is loopback, held open by a sleeping process."""

    def __init__(self) -> None:
        require_tools()
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._outside: list[subprocess.Popen[bytes]] = []
        deadline = time.monotonic() + 30
        while not _cmdline(self.holder.pid).startswith(b"sleep"):
            if self.holder.poll() is not None or time.monotonic() > deadline:
                assert self.holder.stderr is not None
                reason = self.holder.stderr.read().decode(errors="replace").strip()
                self.holder.kill()
                raise ClusterUnavailable(f"cannot make a network namespace: {reason}")
            time.sleep(0.02)
        self.net = _net_ns(self.holder.pid)
        if self.net is None or self.net == _net_ns(os.getpid()):
            self.close()
            raise ClusterUnavailable("unshare --net did not give a network namespace of its own")

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` as a command that runs inside the namespace."""
        return ["nsenter", f"--target={self.holder.pid}", "--net", "--", *args]

    def run(
        self,
        args: Sequence[str],
        env: dict[str, str],
        timeout: float = 300,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` inside the namespace; its output captured, never raising on exit."""
        return subprocess.run(
            self.command(args),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def pids(self) -> list[int]:
        """Every process inside the namespace but its holder."""
        return [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != self.holder.pid and _net_ns(p.name) == self.net
        ]

    def listening(self) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
        """(address, port) of each TCP socket listening inside the namespace."""
        found = []
        for table in ("tcp", "tcp6"):
            lines = Path(f"/proc/{self.holder.pid}/net/{table}").read_text().splitlines()[1:]
            for line in lines:
                local, _, state = line.split()[1:4]
                if state == _LISTEN:
                    host, _, port = local.partition(":")
                    found.append((_address(host), int(port, 16)))
        return found

    def forward(self, port: int, folder: Path) -> None:
        """Make 127.0.0.1:``port`` inside the namespace reach 127.0.0.1:``port`` outside."""
        sock = folder / f"forward-{port}.sock"
        outside = subprocess.Popen(
            ["socat", f"UNIX-LISTEN:{sock},fork", f"TCP:127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its forked children go with it (close)
        )
        self._outside.append(outside)
        _wait_for(sock.exists, f"socat did not create {sock}")
        subprocess.Popen(
            self.command(
                [
                    "socat",
                    f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                    f"UNIX-CONNECT:{sock}",
                ]
            ),
            stdin=subprocess.DEVNULL,
        )  # inside the namespace: close() ends it with the rest
        _wait_for(lambda: any(p == port for _, p in self.listening()), f"no forward of {port}")

    def close(self) -> None:
        """End every process inside the namespace, then the forwards and the holder."""
        _stop_all(self.pids())
        for proc in self._outside:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: socat and its children
            proc.wait(timeout=30)
        self.holder.kill()
        self.holder.wait(timeout=30)


def _wait_for(ready: Callable[[], bool], failure: str, timeout: float = 60) -> None:
    """Poll ``ready`` until it holds; RuntimeError(``failure``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.05)


@dataclass(frozen=True)
class Node:
    """One Ray node: its home directory (Ray's auth token lives in ``~/.ray``)."""

    name: str
    home: Path


class LoopbackCluster:
    """A Ray head plus worker nodes, separate ``ray start`` processes, in a :class:`Namespace`.

    Token authentication is on, as the guide (docs/ray.md) sets it up: every node, and every
    driver, holds the cluster's token (:meth:`env`).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ns = Namespace()
        self.token = secrets.token_hex(32)
        # Ray's Unix sockets live under its temp dir: keep the path short (108-byte limit).
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
        self.nodes: list[Node] = []

    def env(self, home: Path | None = None, token: bool = True, **extra: str) -> dict[str, str]:
        """The environment of a node or a driver of this cluster (``home``: its own HOME);
        without ``token``, Ray's authentication is left to what runs in it."""
        home = home or self.folder / "driver"
        home.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT)) if p)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        return {
            **inherited,
            "HOME": str(home),
            "PYTHONPATH": path + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "RAY_TMPDIR": str(self.ray_tmp),
            "RAY_USAGE_STATS_ENABLED": "0",
            **({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token} if token else {}),
            **extra,
        }

    def start(self, workers: int = 2, cpus: int = 1) -> None:
        """The head node, then ``workers`` worker nodes, ``cpus`` CPUs each; all registered."""
        self._ray_start("head", ["--head", f"--port={HEAD_PORT}",
                                 f"--ray-client-server-port={CLIENT_PORT}"], cpus)  # fmt: skip
        for n in range(workers):
            self._ray_start(f"worker{n + 1}", [f"--address={CLUSTER_ADDRESS}"], cpus)
        self.wait_for_nodes(workers + 1)

    def _ray_start(self, name: str, args: list[str], cpus: int) -> None:
        node = Node(name, self.folder / name)
        done = self.ns.run(
            ["ray", "start", *args, f"--num-cpus={cpus}"], env=self.env(node.home), timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"ray start ({name}) failed:\n{done.stdout}\n{done.stderr}")
        self.nodes.append(node)

    def alive_nodes(self) -> int:
        """Nodes the cluster counts alive, asked through the Ray Client; 0 when that fails.

        Through the client server on purpose: now and then its first client finds the
        per-client server it forks dead at once ("Starting Ray client server failed", an
        empty log), and a later client is served. Waiting for the nodes this way keeps that
        start-up hiccup of Ray's out of the tests of the tool.
        """
        script = (
            "import ray\n"
            f"ray.init(address={CLIENT_ADDRESS!r}, log_to_driver=False)\n"
            "print(sum(1 for n in ray.nodes() if n['Alive']))\n"
        )
        done = self.ns.run([sys.executable, "-c", script], env=self.env(), timeout=120)
        return int(done.stdout.split()[-1]) if done.returncode == 0 and done.stdout else 0

    def wait_for_nodes(self, count: int) -> None:
        """Block until ``count`` nodes are alive (a node registers shortly after ray start)."""
        _wait_for(lambda: self.alive_nodes() >= count, f"fewer than {count} Ray nodes", 120)

    def raylets(self) -> list[int]:
        """Pids of the nodes' raylets, the head's first (it started first)."""
        found = [pid for pid in self.ns.pids() if b"/raylet\0" in _cmdline(pid)[:4096]]
        return sorted(found, key=_start_time)

    def busy_raylets(self) -> set[int]:
        """Raylets one of whose worker processes is running a batch right now."""
        raylets = set(self.raylets())
        return {
            _parent(pid)
            for pid in self.ns.pids()
            if _cmdline(pid).startswith(BATCH_TASK) and _parent(pid) in raylets
        }

    def log_tails(self, pattern: str = "ray_client_server*.err", lines: int = 30) -> str:
        """The last ``lines`` of each of the cluster's Ray logs matching ``pattern``, for a
        failure's message (the logs go with the cluster when it stops)."""
        tails = []
        for log in sorted(self.ray_tmp.glob(f"ray/session_latest/logs/{pattern}")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {log.name} ---\n" + "\n".join(text))
        return "\n".join(tails)

    def not_loopback(self) -> list[str]:
        """Every listening socket in the namespace not bound to loopback, as ``address:port``."""
        return [f"{ip}:{port}" for ip, port in self.ns.listening() if not ip.is_loopback]

    def stop(self) -> None:
        """End the whole cluster (every process in its namespace, by pid)."""
        self.ns.close()
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def _start_time(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


@contextlib.contextmanager
def loopback_cluster(folder: Path, workers: int = 2, cpus: int = 1) -> Iterator[LoopbackCluster]:
    """A started :class:`LoopbackCluster`, stopped afterwards whatever happens."""
    cluster = LoopbackCluster(folder)
    try:
        cluster.start(workers, cpus)
        yield cluster
    finally:
        cluster.stop()
