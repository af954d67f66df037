"""adbd's reverse forwarding (`adb reverse`, adbutils' `reverse`): the listeners a host installs on
the device, kept per adb transport as adbd keeps them (they go when that transport drops).

    reverse:forward:[norebind:]LOCAL;REMOTE   OKAY, then the port as a protocol string when a
                                              new TCP listener was bound (`tcp:0` gets a free one)
    reverse:killforward:LOCAL                 OKAY, or FAIL "listener 'LOCAL' not found"
    reverse:killforward-all                   OKAY
    reverse:list-forward                      a protocol string: `host-N LOCAL REMOTE` lines

LOCAL is the device's side (`tcp:N`, `localabstract:NAME`, `localreserved:NAME`,
`localfilesystem:NAME`), REMOTE the host's. No app code runs on the device, so nothing inside it
connects to a listener; installing, listing and removing them answer as on a phone.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.transport import AdbSession, AdbStream

_LOCAL = re.compile(r"tcp:\d+|local(abstract|reserved|filesystem):.+")
_REMOTE = re.compile(r"tcp:\d+|local(abstract|reserved|filesystem)?:.+|dev:.+|jdwp:\d+|vsock:.+")
_FIRST_FREE_PORT = 38_000


class ReverseListeners:
    """The device's reverse listeners in the order they were installed, each with its transport."""

    def __init__(self) -> None:
        self._listeners: dict[str, tuple[str, AdbSession]] = {}  # local -> (remote, transport)
        self._names: dict[AdbSession, str] = {}
        self._ids = itertools.count(7)  # adbd names a TCP host transport `host-<fd>`
        self._free_port = _FIRST_FREE_PORT

    def drop(self, session: AdbSession) -> None:
        """The transport went away: its listeners close."""
        self._listeners = {k: v for k, v in self._listeners.items() if v[1] is not session}
        self._names.pop(session, None)

    def clear(self) -> None:
        self._listeners.clear()
        self._names.clear()

    def _name(self, session: AdbSession) -> str:
        name = self._names.get(session)
        if name is None:
            name = self._names[session] = f"host-{next(self._ids)}"
        return name

    def answer(self, session: AdbSession, request: str) -> bytes:
        """The bytes adbd writes back for `reverse:<request>`."""
        if request == "list-forward":
            lines = "".join(
                f"{self._name(owner)} {local} {remote}\n"
                for local, (remote, owner) in self._listeners.items()
            )
            return _protocol_string(lines)
        if request == "killforward-all":
            self._listeners.clear()
            return b"OKAY"
        if request.startswith("killforward:"):
            local = request.partition(":")[2]
            if self._listeners.pop(local, None) is None:
                return _fail(f"listener '{local}' not found")
            return b"OKAY"
        if request.startswith("forward:"):
            return self._forward(session, request.partition(":")[2])
        return _fail("not a reverse forwarding command")

    def _forward(self, session: AdbSession, spec: str) -> bytes:
        no_rebind = spec.startswith("norebind:")
        spec = spec.removeprefix("norebind:")
        local, _, remote = spec.partition(";")
        if not local or not remote or ";" in remote or remote.startswith("*"):
            return _fail(f"bad forward: {spec}")
        if not _LOCAL.fullmatch(local):
            return _fail(f"cannot bind listener: unknown socket specification '{local}'")
        if not _REMOTE.fullmatch(remote):
            return _fail(f"unknown socket specification '{remote}'")
        if local in self._listeners:
            if no_rebind:
                return _fail("cannot rebind existing socket")
            self._listeners[local] = (remote, session)  # re-pointed in place; no port comes back
            return b"OKAY"
        port = local.partition(":")[2] if local.startswith("tcp:") else ""
        if port == "0":
            while f"tcp:{self._free_port}" in self._listeners:
                self._free_port += 1
            port = str(self._free_port)
            self._free_port += 1
            local = f"tcp:{port}"
        self._listeners[local] = (remote, session)
        return b"OKAY" + (_protocol_string(port) if port else b"")


def _protocol_string(text: str) -> bytes:
    data = text.encode()
    return f"{len(data):04x}".encode() + data


def _fail(message: str) -> bytes:
    return b"FAIL" + _protocol_string(message)


async def serve_reverse(listeners: ReverseListeners, request: str, stream: AdbStream) -> None:
    await stream.write(listeners.answer(stream.session, request))
