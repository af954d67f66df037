"""Free loopback ports for the virtual phones the tests start (shared by the emulator and bridge suites)."""

from __future__ import annotations

import random
import socket


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As asyncio's servers do: a port whose old connections sit in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_console_port(ports: range) -> int:
    """An even port N with N and N+1 free, picked at random so parallel runs rarely collide."""
    candidates = [p for p in ports if p % 2 == 0]
    random.shuffle(candidates)
    for port in candidates:
        if port_free(port) and port_free(port + 1):
            return port
    raise RuntimeError(f"no free console port pair in {ports.start}-{ports.stop}; stop stray emulators")
