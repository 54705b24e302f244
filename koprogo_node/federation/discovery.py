"""Finding peers: a bootstrap list for the WAN, zeroconf on the LAN.

`Bootstrap` keeps redialling each configured address, with capped exponential
back-off, while no connection to it is up. `LanDiscovery` advertises this node
as `_koprogo._tcp.local.` (TXT: peer id and port) and reports each address
of the others it browses. Neither decides who is admitted: the handshake does.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable, Sequence

import ifaddr  # comes with zeroconf, which lists interfaces with it too
import structlog
from zeroconf import (
    BadTypeInNameException,
    IPVersion,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from .records import format_address, split_address

log = structlog.get_logger()

SERVICE_TYPE = "_koprogo._tcp.local."
RESOLVE_TIMEOUT_MS = 3000
MDNS_GROUP = "224.0.0.251"

Dial = Callable[[str], Awaitable["bytes | None"]]
IsConnected = Callable[[bytes], bool]
FoundCallback = Callable[[str], None]


class Backoff:
    """Exponential delays between retries, capped, with a little jitter."""

    def __init__(self, first_s: float = 1.0, max_s: float = 60.0) -> None:
        self._first_s = first_s
        self._max_s = max_s
        self._next_s = first_s

    def next_delay_s(self) -> float:
        """The delay before the next retry; doubles up to the cap."""
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self._max_s)
        # Jitter keeps nodes restarted together from redialling in lockstep.
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self._next_s = self._first_s


class Bootstrap:
    """Keep a connection up to each bootstrap address, redialling with back-off."""

    def __init__(
        self,
        addresses: Sequence[str],
        dial: Dial,
        is_connected: IsConnected | None = None,
        first_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        check_interval_s: float = 5.0,
    ) -> None:
        for address in addresses:
            split_address(address)  # a typo fails at start, not at 3 a.m.
        self._addresses = tuple(dict.fromkeys(addresses))
        self._dial = dial
        self._is_connected = is_connected
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._check_interval_s = check_interval_s
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start one redial loop per address."""
        self._tasks = [
            asyncio.create_task(self._keep_connected(address), name=address)
            for address in self._addresses
        ]

    async def stop(self) -> None:
        """Stop every redial loop and wait for them."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _keep_connected(self, address: str) -> None:
        backoff = Backoff(self._first_delay_s, self._max_delay_s)
        while True:
            peer = await self._dial(address)  # logs its own failures
            if peer is None:
                await asyncio.sleep(backoff.next_delay_s())
                continue
            backoff.reset()
            await asyncio.sleep(self._check_interval_s)
            # Without is_connected, the next dial is the check: the transport
            # answers at once for an address it is connected to.
            while self._is_connected is not None and self._is_connected(peer):
                await asyncio.sleep(self._check_interval_s)


class LanDiscovery:
    """Advertise this node over mDNS and report the other nodes on the LAN."""

    def __init__(
        self,
        peer_id: str,
        port: int,
        on_found: FoundCallback,
        addresses: Sequence[str] = (),
        interfaces: Sequence[str] | None = None,
    ) -> None:
        self._peer_id = peer_id
        self._port = port
        self._on_found = on_found
        self._addresses = tuple(addresses)
        self._interfaces = interfaces
        self._zeroconf: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._resolving: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Advertise our service and start browsing for others."""
        if self._interfaces is None:
            self._zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
        else:
            self._zeroconf = AsyncZeroconf(
                interfaces=list(self._interfaces), ip_version=IPVersion.V4Only
            )
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self._peer_id}.{SERVICE_TYPE}",
            port=self._port,
            properties={"peer": self._peer_id, "port": str(self._port)},
            server=f"{self._peer_id.lower()}.local.",
            parsed_addresses=list(self._addresses or _own_ipv4_addresses()),
        )
        # A restart may find our old name still cached on the LAN; the peer
        # id travels in TXT, so a renamed instance is found all the same.
        await self._zeroconf.async_register_service(self._info, allow_name_change=True)
        self._browser = AsyncServiceBrowser(
            self._zeroconf.zeroconf, SERVICE_TYPE, handlers=[self._on_change]
        )

    async def stop(self) -> None:
        """Stop browsing, withdraw our service and close the sockets."""
        for task in self._resolving:
            task.cancel()
        await asyncio.gather(*self._resolving, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._zeroconf is not None:
            if self._info is not None:
                await self._zeroconf.async_unregister_service(self._info)
            await self._zeroconf.async_close()
            self._zeroconf = None

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        """Browser callback (on the loop): resolve services that appear."""
        if state_change is ServiceStateChange.Removed:
            return
        task = asyncio.create_task(self._resolve(zeroconf, service_type, name))
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        try:
            if not await info.async_request(zeroconf, RESOLVE_TIMEOUT_MS):
                log.debug("lan_peer_unresolved", name=name)
                return
        except BadTypeInNameException:
            return
        peer = (info.properties or {}).get(b"peer")
        if not peer or peer.decode(errors="replace") == self._peer_id:
            return  # not one of ours, or ourselves
        if info.port is None:
            return
        log.debug("lan_peer_found", peer=peer.decode(errors="replace"), name=name)
        for host in info.parsed_addresses(IPVersion.V4Only):
            self._on_found(format_address(host, info.port))


def multicast_problem(
    interface: str = "127.0.0.1", timeout_s: float = 1.0
) -> str | None:
    """Why mDNS cannot work through `interface`, or None if a probe loops back.

    Blocking (up to `timeout_s`): call it from `doctor` or a thread.
    """
    probe = b"koprogo-multicast-probe"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout_s)
            sock.bind(("", 0))
            membership = socket.inet_aton(MDNS_GROUP) + socket.inet_aton(interface)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface)
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            sock.sendto(probe, (MDNS_GROUP, sock.getsockname()[1]))
            while sock.recv(64) != probe:
                pass
    except TimeoutError:
        return (
            f"a multicast datagram to {MDNS_GROUP} via {interface} did not loop "
            f"back within {timeout_s} s"
        )
    except OSError as exc:
        return f"multicast to {MDNS_GROUP} via {interface} failed: {exc}"
    return None


def _own_ipv4_addresses() -> list[str]:
    """This host's non-loopback IPv4 addresses, for the mDNS A records."""
    return [
        ip.ip
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    ]
