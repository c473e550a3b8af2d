"""WebRTC setup shared by WHIP ingest and WHEP preview: ICE candidates and peer connections.

aioice gathers host candidates from every interface except loopback, and aiortc falls back
to Google's STUN server when given no ICE servers. Neither suits a server: its candidates
must be the addresses operators choose (MediaMTX's ``webrtcIPsFromInterfaces`` /
``webrtcAdditionalHosts`` play the same role), and nothing may call out to a public STUN
server. ``restrict_host_addresses`` and ``restrict_peer_networks`` are the only places that
change aioice's behaviour."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection

# Peers that never finish ICE/DTLS are closed after this long (a WHIP/WHEP answer is
# complete, non-trickle: a client that can connect does so within a few seconds).
CONNECT_TIMEOUT_S = 20.0
_CANDIDATE_LINE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ (\S+)", re.MULTILINE)
_ORIGINAL_GET_HOST_ADDRESSES = aioice.ice.get_host_addresses
_ORIGINAL_REQUEST_RECEIVED = aioice.ice.Connection.request_received
_ORIGINAL_ADD_REMOTE_CANDIDATE = aioice.ice.Connection.add_remote_candidate


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Make every ICE agent of this process offer exactly ``addresses`` as host candidates
    (loopback included, which aioice otherwise drops); empty restores aioice's own choice.

    aioice 0.13 looks the function up in its module at gathering time, so replacing the
    module attribute is the hook. It is process-wide, which matches the setting."""
    checked = [str(ipaddress.ip_address(address)) for address in addresses]
    if not checked:
        aioice.ice.get_host_addresses = _ORIGINAL_GET_HOST_ADDRESSES
        return

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in checked if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured


def restrict_peer_networks(networks: Sequence[str]) -> None:
    """Make every ICE agent of this process ignore peers outside ``networks``: their
    candidates are not checked and their checks get no answer, so no ICE traffic goes to any
    other address. Empty restores aioice's own behaviour (any peer).

    A browser offers every address it has (Chromium ranks loopback last), so on a host that
    must keep WebRTC on 127.0.0.0/8 (tests, a box behind a relay) the server side has to
    refuse the rest. Like ``restrict_host_addresses``, process-wide."""
    allowed_networks = [ipaddress.ip_network(n, strict=False) for n in networks]
    connection = aioice.ice.Connection
    if not allowed_networks:
        connection.request_received = _ORIGINAL_REQUEST_RECEIVED  # type: ignore[method-assign]
        connection.add_remote_candidate = _ORIGINAL_ADD_REMOTE_CANDIDATE  # type: ignore[method-assign]
        return

    def allowed(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # an mDNS name: it could resolve anywhere
            return False
        return any(address in network for network in allowed_networks)

    def request_received(
        self: aioice.ice.Connection, message: Any, addr: tuple[str, int], protocol: Any
    ) -> None:
        if allowed(addr[0]):
            _ORIGINAL_REQUEST_RECEIVED(self, message, addr, protocol)

    async def add_remote_candidate(
        self: aioice.ice.Connection, candidate: aioice.Candidate | None
    ) -> None:
        if candidate is None or allowed(candidate.host):
            await _ORIGINAL_ADD_REMOTE_CANDIDATE(self, candidate)

    connection.request_received = request_received  # type: ignore[method-assign]
    connection.add_remote_candidate = add_remote_candidate  # type: ignore[method-assign,assignment]


def peer_configuration() -> RTCConfiguration:
    """No STUN or TURN: host candidates only (aiortc's default would be Google's STUN)."""
    return RTCConfiguration(iceServers=[])


def new_peer() -> RTCPeerConnection:
    return RTCPeerConnection(configuration=peer_configuration())


def candidate_addresses(sdp: str) -> list[tuple[str, str]]:
    """``(address, type)`` of every ICE candidate in an SDP blob."""
    return [(m.group(1), m.group(2)) for m in _CANDIDATE_LINE.finditer(sdp)]


async def wait_connected(pc: RTCPeerConnection, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """True once ``pc`` is connected; False if it failed, closed or timed out first."""
    done = asyncio.Event()

    def changed() -> None:
        if pc.connectionState in ("connected", "failed", "closed"):
            done.set()

    pc.on("connectionstatechange", changed)
    changed()
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    except TimeoutError:
        return False
    finally:
        pc.remove_listener("connectionstatechange", changed)
    return pc.connectionState == "connected"
