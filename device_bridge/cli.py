"""`phoneflow bridge ...`: pair a phone, serve paired phones, run one workflow, inspect the outbox.

Exit codes: 0 done (for `exec`: the run succeeded), 1 the run did not succeed, 2 the input
or the setup could not be used (bad file, device busy or unreachable, not paired, server refused).
"""

from __future__ import annotations

import json
import logging
import shlex
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from device_bridge.errors import BridgeError
from device_bridge.settings import BridgeSettings

bridge_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run workflows on phones through uiautomator2 or an Appium server.",
)

EXIT_SUCCESS = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Where the bridge keeps pairings and its outbox (PHONEFLOW_BRIDGE_STATE_DIR)."
    ),
]

Driver = Annotated[
    str | None,
    typer.Option(
        "--driver",
        help="How to drive the phones: uiautomator2 (this machine's adb; the default) or appium "
        "(PHONEFLOW_BRIDGE_DRIVER).",
    ),
]
AppiumUrl = Annotated[
    str | None,
    typer.Option(
        "--appium-url",
        help="The Appium server for --driver appium (PHONEFLOW_BRIDGE_APPIUM_URL; default http://127.0.0.1:4723).",
    ),
]
AppiumCapabilities = Annotated[
    str | None,
    typer.Option(
        "--appium-capabilities",
        help="JSON object (text or a file) added to the Appium session's capabilities, e.g. a device "
        "cloud's options (PHONEFLOW_BRIDGE_APPIUM_CAPABILITIES).",
    ),
]

_err = Console(stderr=True, soft_wrap=True)
_OUTCOME_STYLES = {"ok": "green", "skipped": "yellow", "failed": "bold red"}


def _settings(state_dir: Path | None, **overrides: Any) -> BridgeSettings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if state_dir is not None:
        values["state_dir"] = state_dir
    try:
        settings = BridgeSettings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise _fail(
            f"the bridge settings cannot be used ({problems}): fix the option or PHONEFLOW_BRIDGE_ variable"
        ) from None
    settings.ensure_state_dir()
    return settings


def _driver_options(driver: str | None, appium_url: str | None, capabilities: str | None) -> dict[str, Any]:
    """The driver settings the command line gives (None: leave the environment's or the default)."""
    if driver is not None and driver not in ("uiautomator2", "appium"):
        raise _fail(f"--driver {driver!r} is not a driver: use uiautomator2 or appium")
    parsed: dict[str, Any] | None = None
    if capabilities is not None:
        source = Path(capabilities)
        try:
            text = source.read_text(encoding="utf-8") if source.is_file() else capabilities
            value = json.loads(text)
        except (OSError, ValueError) as exc:
            raise _fail(
                f"--appium-capabilities is neither a JSON object nor a readable JSON file: {exc}"
            ) from None
        if not isinstance(value, dict):
            raise _fail(
                '--appium-capabilities must be a JSON object, e.g. \'{"appium:deviceName": "Pixel 8"}\''
            )
        parsed = value
    return {"driver": driver, "appium_url": appium_url, "appium_capabilities": parsed}


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    _err.print(Text.assemble(("error: ", "bold red"), message))
    return typer.Exit(code)


def _device_facts(serial: str) -> tuple[str, str]:
    """The model and Android version of `serial`, read with adb (no uiautomator2 session needed)."""
    import adbutils

    try:
        device = adbutils.adb.device(serial)
        model = device.shell("getprop ro.product.model").strip()
        release = device.shell("getprop ro.build.version.release").strip()
    except (adbutils.AdbError, OSError) as exc:
        raise BridgeError(
            f"cannot read device {serial} through adb ({exc}): check that `adb devices` lists it as `device`"
        ) from exc
    return model or "unknown", release or "unknown"


@bridge_app.command("pair")
def pair_command(
    server: Annotated[str, typer.Option("--server", help="The phoneflow server, e.g. http://127.0.0.1:8000")],
    code: Annotated[str, typer.Option("--code", help="A pairing code from the dashboard or the API.")],
    serial: Annotated[str, typer.Option("--serial", help="The adb serial of the phone, e.g. emulator-5554.")],
    state_dir: StateDir = None,
) -> None:
    """Redeem a pairing code for SERIAL and keep the device token in the bridge's state."""
    from device_bridge.server_api import pair
    from device_bridge.state import BridgeState

    settings = _settings(state_dir)
    try:
        model, release = _device_facts(serial)
        with httpx.Client(timeout=settings.http_timeout_s) as client:
            pairing = pair(
                client, server, code=code.strip(), serial=serial, model=model, android_version=release
            )
    except BridgeError as exc:
        raise _fail(str(exc)) from None
    BridgeState(settings.state_db).save_pairing(serial, pairing.device_id, pairing.token, server)
    typer.echo(f"paired {serial} ({model}, Android {release}) with {server} as device {pairing.device_id}")
    follow_up = f"phoneflow bridge run --server {server} --serial {serial}"
    if state_dir is not None:
        follow_up += f" --state-dir {shlex.quote(str(state_dir))}"
    typer.echo(f"serve it with: {follow_up}")


@bridge_app.command("run")
def run_command(
    server: Annotated[
        str | None, typer.Option("--server", help="Serve only devices paired with this server.")
    ] = None,
    serial: Annotated[
        list[str] | None,
        typer.Option("--serial", help="A paired serial to serve (repeat; default: all paired)."),
    ] = None,
    state_dir: StateDir = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each claim, run and upload.")] = False,
    driver: Driver = None,
    appium_url: AppiumUrl = None,
    appium_capabilities: AppiumCapabilities = None,
) -> None:
    """Serve paired devices: heartbeat, claim queued runs, run them, report them. Ctrl-C stops."""
    from device_bridge.agent import Agent

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")
    options = _driver_options(driver, appium_url, appium_capabilities)
    settings = _settings(state_dir, server_url=server, **options)
    try:
        agent = Agent(settings, serial or [])
        agent.start()
    except BridgeError as exc:
        raise _fail(str(exc)) from None
    stopped = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    serials = ", ".join(p.serial for p in agent.paired)
    typer.echo(f"serving {serials}; outbox {settings.outbox_db}; Ctrl-C stops")
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    typer.echo("stopping: the run in flight ends after its current step")
    status = agent.shutdown()
    typer.echo(
        f"stopped after {status['runsDone']} run(s); {status['pendingReports']} report(s) left in the outbox"
    )


@bridge_app.command("exec")
def exec_command(
    file: Annotated[Path, typer.Argument(help="The workflow definition (JSON).", show_default=False)],
    serial: Annotated[str, typer.Option("--serial", help="The adb serial of the phone.")],
    inputs: Annotated[
        str | None,
        typer.Option("--inputs", help='Run inputs: JSON text such as \'{"order": "A-1"}\' or a file.'),
    ] = None,
    scenario: Annotated[Path | None, typer.Option("--scenario", help="How approvals are answered.")] = None,
    denylist: Annotated[Path | None, typer.Option("--denylist", help="Package denylist file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
    state_dir: StateDir = None,
    driver: Driver = None,
    appium_url: AppiumUrl = None,
    appium_capabilities: AppiumCapabilities = None,
) -> None:
    """Run FILE once on the phone SERIAL, without a server, and print its trace."""
    from device_bridge.devices import open_device
    from interpreter.engine import run_workflow
    from interpreter.errors import WorkflowError
    from interpreter.problems import errors_only
    from interpreter.scenario import load_denylist, load_json_file, load_scenario, parse_inputs
    from interpreter.trace import RunStatus
    from interpreter.validation import validate

    settings = _settings(state_dir, **_driver_options(driver, appium_url, appium_capabilities))
    try:
        definition = load_json_file(file, "workflow")
        run_inputs = parse_inputs(inputs)
        gate = load_scenario(scenario)
        denied = load_denylist(denylist)
    except WorkflowError as exc:
        raise _fail(str(exc)) from None
    problems = validate(definition, denied)
    for problem in problems:
        _err.print(f"{problem.severity} {problem.pointer or '/'}: {problem.message}", highlight=False)
    if errors_only(problems):
        raise _fail("the workflow is not valid: fix the errors above and run again")
    try:
        device = open_device(serial, settings)
    except BridgeError as exc:
        raise _fail(str(exc)) from None
    try:
        result = run_workflow(definition, device, inputs=run_inputs, denylist=denied, approvals=gate)
    finally:
        device.close()
    out = Console(soft_wrap=True)
    if as_json:
        out.out(json.dumps(result.to_json(), indent=2, ensure_ascii=False), highlight=False)
    else:
        _print_trace(out, f"run of {definition.get('name')!r} on {serial}", result)
    raise typer.Exit(EXIT_SUCCESS if result.status is RunStatus.SUCCESS else EXIT_RUN_FAILED)


def _print_trace(out: Console, title: str, result: Any) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("#", "node", "kind", "outcome", "tries", "ms", "message / output"):
        table.add_column(column, overflow="fold" if column.startswith("message") else "ellipsis")
    for event in result.trace:
        detail = event.message or (json.dumps(event.output, ensure_ascii=False) if event.output else "")
        outcome = Text(event.outcome.value, style=_OUTCOME_STYLES.get(event.outcome.value, ""))
        table.add_row(
            str(event.seq),
            event.node_id,
            event.kind,
            outcome,
            str(event.attempts),
            str(event.duration_ms),
            detail,
        )
    out.print(table)
    summary = f"{result.status.value} · {result.n_steps} steps · {result.n_failed} failed"
    summary += f" · {result.n_retries} retries · {result.duration_ms} ms"
    if result.error_message:
        summary += f" · {result.error_message}"
    out.print(summary, highlight=False)


@bridge_app.command("outbox")
def outbox_command(
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """List the reports and artifacts waiting to be sent, and those the server rejected (with why)."""
    from device_bridge.outbox import Outbox

    settings = _settings(state_dir)
    outbox = Outbox(settings.outbox_db)
    reports = outbox.reports()
    artifacts = outbox.artifacts()
    outbox.close()
    if as_json:
        rows = [
            {"kind": "report", "seq": r.seq, "runId": r.run_id, "deviceId": r.device_id,
             "runStatus": r.run_status, "state": r.state.value, "reason": r.reason,
             "attempts": r.attempts, "lastError": r.last_error, "queuedAt": r.created_at}
            for r in reports
        ] + [
            {"kind": "artifact", "id": a.id, "runId": a.run_id, "name": a.name, "state": a.state.value,
             "reason": a.reason, "attempts": a.attempts}
            for a in artifacts
        ]  # fmt: skip
        typer.echo(json.dumps(rows, indent=2))
        return
    if not reports and not artifacts:
        typer.echo(f"the outbox is empty ({settings.outbox_db})")
        return
    out = Console(soft_wrap=True)
    table = Table(title=f"outbox {settings.outbox_db}", title_justify="left")
    for column in ("what", "run", "run status", "state", "tries", "reason / last error"):
        table.add_column(column, overflow="fold")
    for r in reports:
        why = r.reason or r.last_error or ""
        table.add_row(f"report #{r.seq}", r.run_id, r.run_status, r.state.value, str(r.attempts), why)
    for a in artifacts:
        why = a.reason or ""
        table.add_row(f"artifact {a.name}", a.run_id, "", a.state.value, str(a.attempts), why)
    out.print(table)


@bridge_app.command("upload")
def upload_command(state_dir: StateDir = None) -> None:
    """Send everything in the outbox now and exit (0 when it is empty afterwards, except rejected rows)."""
    from device_bridge.outbox import Outbox
    from device_bridge.state import BridgeState
    from device_bridge.uploader import Credentials, Uploader

    settings = _settings(state_dir)
    state = BridgeState(settings.state_db)

    def credentials(device_id: str) -> Credentials | None:
        paired = state.by_device_id(device_id)
        return Credentials(paired.server_url, paired.token) if paired else None

    outbox = Outbox(settings.outbox_db)
    uploader = Uploader(
        outbox,
        credentials,
        batch_size=settings.upload_batch_size,
        max_batch_bytes=settings.upload_max_batch_bytes,
        timeout_s=settings.http_timeout_s,
    )
    typer.echo(f"uploading {outbox.count()} pending report(s)")
    try:
        sent = uploader.upload_all()
    except BridgeError as exc:
        raise _fail(f"{exc} ({outbox.count()} report(s) still queued)", EXIT_RUN_FAILED) from None
    finally:
        uploader.close()
    typer.echo(f"sent {sent}; {outbox.count()} pending")
    outbox.close()
