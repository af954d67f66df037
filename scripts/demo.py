"""`make demo`: phoneflow end to end on this machine, in one command.

1. starts the server on an embedded SQLite file (a fresh one under .phoneflow/);
2. creates a demo account and prints its API token (to sign in to the dashboard);
3. starts the virtual Android device (the emulator) with the sample apps;
4. pairs it through the device bridge with a one-time code;
5. saves and publishes the sample workflow (examples/capture_order.json);
6. starts the bridge, triggers a run through the API and prints the trace as it comes back;
7. prints where to look (the dashboard) and stays up until Ctrl-C, then cleans up.

Every step says what it does; a failure says which step and what to do.

Ports: the server takes the first free one of 8000, 8001, 8080, 8765 and the virtual phone the
first free console port from 5554, unless `--port` / `PHONEFLOW_DEMO_PORT` and `--emulator-port`
/ `PHONEFLOW_DEMO_EMULATOR_PORT` choose them (`make demo DEMO_ARGS="--port 9000"` works too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PHONEFLOW = str(BIN / "phoneflow")
WORKFLOW = ROOT / "examples" / "capture_order.json"
INPUTS = ROOT / "examples" / "capture_order.inputs.json"
TERMINAL = {"success", "failed", "cancelled", "timeout"}
DEMO_PROFILE = "demo"
DEMO_EMAIL = "demo@example.com"


class DemoError(Exception):
    """A step of the demo failed; the message says which and what to do."""


def say(text: str) -> None:
    print(f"\033[1m==>\033[0m {text}", flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pick_server_port(chosen: int | None) -> int:
    if chosen is not None:
        if not port_free(chosen):
            raise DemoError(
                f"port {chosen} is already in use: stop what listens there, or choose another "
                "with --port / PHONEFLOW_DEMO_PORT"
            )
        return chosen
    for port in (8000, 8001, 8080, 8765):
        if port_free(port):
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pick_console_port(chosen: int | None) -> int:
    # The adb server finds emulators on odd ports 5555..5585 (console port + 1).
    if chosen is not None:
        if chosen % 2 or not 5554 <= chosen <= 5584:
            raise DemoError(
                f"emulator port {chosen} is not one adb looks at: give an even port from 5554 to 5584"
            )
        if not (port_free(chosen) and port_free(chosen + 1)):
            raise DemoError(
                f"emulator ports {chosen}/{chosen + 1} are in use: choose another even port with "
                "--emulator-port / PHONEFLOW_DEMO_EMULATOR_PORT"
            )
        return chosen
    for console in range(5554, 5586, 2):
        if port_free(console) and port_free(console + 1):
            return console
    raise DemoError("no free emulator port pair in 5554-5585: stop other emulators and try again")


class Processes:
    """The demo's child processes, stopped in reverse order at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.cleanups: list[Callable[[], object]] = []

    def on_stop(self, cleanup: Callable[[], object]) -> None:
        self.cleanups.append(cleanup)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.children.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise DemoError(f"the {name} stopped unexpectedly (exit {proc.returncode}):\n{tail}")

    def stop_all(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for _name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_until(what: str, probe: Any, timeout_s: float, procs: Processes) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs.check()
        with contextlib.suppress(Exception):
            value = probe()
            if value:
                return value
        time.sleep(0.2)
    raise DemoError(f"{what} did not happen within {timeout_s:.0f} s; see the logs in {procs.log_dir}")


def adb_path() -> str:
    found = shutil.which("adb")
    if found is None:
        raise DemoError(
            "Debian's adb is not installed: `make demo` installs it when run as root, "
            "or run `sudo apt-get install adb` and try again"
        )
    return found


def api(client: httpx.Client, method: str, path: str, token: str, **kwargs: Any) -> Any:
    response = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    if response.status_code >= 400:
        raise DemoError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def print_trace(run: dict[str, Any]) -> None:
    print()
    print(f"  {'#':>2}  {'node':<12} {'kind':<26} {'outcome':<8} {'ms':>6}  message")
    for event in run.get("trace", []):
        print(
            f"  {event['seq']:>2}  {event['nodeId']:<12} {event['kind']:<26} {event['outcome']:<8} "
            f"{event['durationMs']:>6}  {event['message'] or ''}"
        )
    print(
        f"\n  run {run['id']}: {run['status']}"
        + (f" — {run['errorMessage']}" if run.get("errorMessage") else "")
    )
    print()


@contextlib.contextmanager
def demo_dir() -> Iterator[Path]:
    base = ROOT / ".phoneflow"
    base.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="demo-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _lost_port_race(emulator: subprocess.Popen[bytes], procs: Processes, *, chosen: bool, last: bool) -> bool:
    """True when the emulator stopped at once because its ports were taken meanwhile (and it was
    dropped from the children, to start again on other ports)."""
    try:
        emulator.wait(3)
    except subprocess.TimeoutExpired:
        return False  # still running: it has its ports
    log = (procs.log_dir / "emulator.log").read_text(errors="replace")
    if "already in use" not in log or chosen or last:
        return False  # procs.check() reports it with its log
    procs.children = [(name, proc) for name, proc in procs.children if proc is not emulator]
    return True


def run_demo(work: Path, procs: Processes, options: argparse.Namespace) -> None:
    port = pick_server_port(options.port)
    console = pick_console_port(options.emulator_port)
    adb = adb_path()
    env = {**os.environ, "ADBUTILS_ADB_PATH": adb, "PYTHONUNBUFFERED": "1"}
    db_url = f"sqlite:///{work / 'phoneflow.db'}"
    server_url = f"http://127.0.0.1:{port}"
    serial = f"emulator-{console}"

    say(f"starting the server on {server_url} (SQLite: {work / 'phoneflow.db'})")
    server_env = {**env, "PHONEFLOW_DATABASE_URL": db_url}
    procs.start("server", [PHONEFLOW, "serve", "--port", str(port), "--database-url", db_url], server_env)
    wait_until(
        "the server answering /healthz", lambda: httpx.get(server_url + "/healthz").is_success, 90, procs
    )

    say("creating the demo account")
    created = subprocess.run(
        [PHONEFLOW, "admin", "create-account", DEMO_EMAIL, "--database-url", db_url],
        capture_output=True,
        text=True,
        env=server_env,
        check=False,
    )
    if created.returncode != 0:
        raise DemoError(f"creating the demo account failed: {created.stderr.strip()}")
    token = created.stdout.strip().splitlines()[-1]

    subprocess.run([adb, "start-server"], env=env, check=False, capture_output=True)
    for attempt in range(3):
        say(f"starting the virtual Android device {serial} with the sample apps")
        emulator = procs.start("emulator", [PHONEFLOW, "emulator", "start", "--port", str(console)], env)
        if not _lost_port_race(emulator, procs, chosen=options.emulator_port is not None, last=attempt == 2):
            break
        # another emulator took the ports between the probe and the start: take the next free pair
        console = pick_console_port(None)
        serial = f"emulator-{console}"

    def device_online() -> bool:
        out = subprocess.run([adb, "devices"], env=env, capture_output=True, text=True, check=False).stdout
        return f"{serial}\tdevice" in out

    wait_until(f"`adb devices` listing {serial}", device_online, 30, procs)

    with httpx.Client(base_url=server_url, timeout=30) as client:
        say("saving and publishing the sample workflow (examples/capture_order.json)")
        definition = json.loads(WORKFLOW.read_text(encoding="utf-8"))
        workflow = api(
            client,
            "POST",
            "/api/v1/workflows",
            token,
            json={"name": definition["name"], "definition": definition},
        )
        api(
            client,
            "POST",
            f"/api/v1/workflows/{workflow['id']}/publish",
            token,
            json={"versionId": workflow["versionId"]},
        )

        say(f"pairing {serial} with a one-time code")
        code = api(client, "POST", "/api/v1/pairing-codes", token)["code"]
        bridge_state = str(work / "bridge")
        pair_args = ["--server", server_url, "--code", code, "--serial", serial, "--state-dir", bridge_state]
        paired = subprocess.run(
            [PHONEFLOW, "bridge", "pair", *pair_args], capture_output=True, text=True, env=env, check=False
        )
        if paired.returncode != 0:
            raise DemoError(f"pairing failed: {paired.stderr.strip() or paired.stdout.strip()}")
        print("    " + paired.stdout.strip().splitlines()[0])
        device_id = api(client, "GET", "/api/v1/devices", token)[0]["id"]

        say("starting the device bridge (it claims queued runs and drives the phone through uiautomator2)")
        procs.start(
            "bridge",
            [
                PHONEFLOW,
                "bridge",
                "run",
                "--server",
                server_url,
                "--serial",
                serial,
                "--state-dir",
                bridge_state,
                "-v",
            ],
            env,
        )

        say("triggering a run of the workflow")
        inputs = json.loads(INPUTS.read_text(encoding="utf-8"))
        run = api(
            client,
            "POST",
            f"/api/v1/workflows/{workflow['id']}/runs",
            token,
            json={"deviceId": device_id, "inputs": inputs},
        )
        seen = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            procs.check()
            run = api(client, "GET", f"/api/v1/runs/{run['id']}", token)
            for event in run["trace"][seen:]:
                print(
                    f"    step {event['seq']}: {event['nodeId']} ({event['kind']}) {event['outcome']}",
                    flush=True,
                )
            seen = len(run["trace"])
            if run["status"] in TERMINAL:
                break
            time.sleep(0.3)
        else:
            raise DemoError(f"the run did not finish within 120 s; see the logs in {procs.log_dir}")
        print_trace(run)

    say(f"signing the phoneflow CLI in to the demo server (profile {DEMO_PROFILE!r})")
    login = subprocess.run(
        [PHONEFLOW, "login", "--server", server_url, "--with-token", "--profile", DEMO_PROFILE],
        input=token, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if login.returncode != 0:
        raise DemoError(f"signing the CLI in failed: {login.stderr.strip()}")
    procs.on_stop(
        lambda: subprocess.run(
            [PHONEFLOW, "logout", "--profile", DEMO_PROFILE], env=env, capture_output=True, check=False
        )
    )

    say("phoneflow is up. Look around:")
    print(f"    dashboard      {server_url}/   (sign in with the token below)")
    print(f"    API token      {token}")
    print(f"    this run       {server_url}/runs/{run['id']}")
    print(f"    API docs       {server_url}/docs")
    print(f"    the CLI        export PHONEFLOW_PROFILE={DEMO_PROFILE}   (signed in as {DEMO_EMAIL}), then:")
    print(f"                   phoneflow runs list · phoneflow runs show {run['id']}")
    print(f"                   phoneflow runs trigger {definition['name']!r} --device {serial} "
          f"--inputs '{{\"order\": \"A-1002\"}}' --watch")  # fmt: skip
    print(f"    the phone      adb -s {serial} shell dumpsys window | grep mCurrentFocus")
    print(f"    logs           {procs.log_dir}")
    print("\n    Ctrl-C stops everything, signs the CLI out and removes the demo's files.\n", flush=True)
    while True:
        procs.check()
        time.sleep(1)


def env_port(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"demo failed: {name}={value!r} is not a port number") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="phoneflow end to end on this machine.")
    parser.add_argument(
        "--port",
        type=int,
        default=env_port("PHONEFLOW_DEMO_PORT"),
        help="the server's port (PHONEFLOW_DEMO_PORT; default: the first free of 8000, 8001, 8080, 8765)",
    )
    parser.add_argument(
        "--emulator-port",
        type=int,
        default=env_port("PHONEFLOW_DEMO_EMULATOR_PORT"),
        help="the virtual phone's even console port, 5554-5584 (PHONEFLOW_DEMO_EMULATOR_PORT; "
        "default: the first free)",
    )
    return parser.parse_args(argv)


def _stop_requested(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    # Ctrl-C (and a plain `kill`) stop the demo even where it was started with SIGINT ignored (a
    # background job of a script, a test runner's worker): Python then installs no handler of its
    # own, and the children would inherit the ignoring too. With a handler here, they start with the
    # default again.
    signal.signal(signal.SIGINT, _stop_requested)
    signal.signal(signal.SIGTERM, _stop_requested)
    with demo_dir() as work:
        procs = Processes(work)
        try:
            run_demo(work, procs, options)
        except KeyboardInterrupt:
            print("\nstopping the bridge, the emulator and the server …")
        except DemoError as exc:
            print(f"\ndemo failed: {exc}", file=sys.stderr)
            return 1
        finally:
            procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
