"""The uiautomator2 server over real sockets, without adb: HTTP framing and the JSON-RPC methods."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from PIL import Image
from u2_harness import RpcFailure, ServerOnLoop, selector

from emulator.u2server import U2Server
from interpreter.appmodel import AppModel, sample_apps

SHOP = "com.example.shop"


@pytest.fixture
def u2() -> Iterator[ServerOnLoop]:
    running = ServerOnLoop(sample_apps())
    yield running
    running.close()


def _launch_shop(u2: ServerOnLoop) -> None:
    u2.on_loop(lambda: u2.device.phone.launch(SHOP))


def _raw_exchange(port: int, chunks: list[bytes], expect_responses: int) -> list[tuple[int, bytes]]:
    """Send `chunks` one write each, then read `expect_responses` final responses as (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for chunk in chunks:
            sock.sendall(chunk)
            time.sleep(0.002)
        buffer, responses = b"", []
        while len(responses) < expect_responses:
            data = sock.recv(65536)
            assert data, f"connection closed after {responses}"
            buffer += data
            while b"\r\n\r\n" in buffer:
                head, rest = buffer.split(b"\r\n\r\n", 1)
                status = int(head.split(b" ")[1])
                length = int(head.partition(b"Content-Length: ")[2].split(b"\r\n")[0] or 0)
                if len(rest) < length:
                    break
                buffer = rest[length:]
                if status >= 200:  # skip interim 1xx answers
                    responses.append((status, rest[:length]))
        return responses


def test_ping_answers_pong(u2: ServerOnLoop) -> None:
    assert u2.http("GET", "/ping") == (200, b"pong")


def test_unknown_path_is_404_and_says_what_exists(u2: ServerOnLoop) -> None:
    status, body = u2.http("GET", "/nope")
    assert status == 404
    assert b"/jsonrpc/0" in body


def test_request_split_across_many_writes_and_keep_alive(u2: ServerOnLoop) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "windowSize", "params": {}}).encode()
    request = b"POST /jsonrpc/0 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    # one byte per write for the first request, then a second request on the same connection
    chunks = [request[i : i + 1] for i in range(60)] + [request[60:], ping]
    (first, answer), (second, pong) = _raw_exchange(u2.port, chunks, expect_responses=2)
    assert first == 200
    assert json.loads(answer)["result"] == {"width": 1080, "height": 2340}
    assert (second, pong) == (200, b"pong")


def test_void_methods_answer_result_null(u2: ServerOnLoop) -> None:
    request = {"jsonrpc": "2.0", "id": 3, "method": "wakeUp", "params": {}}
    status, body = u2.http("POST", "/jsonrpc/0", json.dumps(request).encode())
    assert status == 200
    assert json.loads(body) == {"jsonrpc": "2.0", "id": 3, "result": None}


def test_unknown_method_is_32601_and_lists_methods(u2: ServerOnLoop) -> None:
    with pytest.raises(RpcFailure) as info:
        u2.rpc("noSuchMethod")
    assert info.value.code == -32601
    assert "noSuchMethod" in info.value.data
    assert "dumpWindowHierarchy" in info.value.data


def test_bad_params_are_32602_naming_the_parameter(u2: ServerOnLoop) -> None:
    with pytest.raises(RpcFailure) as info:
        u2.rpc("click", "ten", 20)
    assert info.value.code == -32602
    assert "parameter 0 (x)" in info.value.data
    with pytest.raises(RpcFailure) as info:
        u2.rpc("exist", selector(textMatches="(unclosed"))
    assert info.value.code == -32602
    assert "regular expression" in info.value.data


def _chain(first: dict, *links: tuple[str, dict]) -> dict:  # type: ignore[type-arg]
    chained = dict(first)
    chained["childOrSibling"] = [relation for relation, _ in links]
    chained["childOrSiblingSelector"] = [sub for _, sub in links]
    return chained


def test_child_and_sibling_selectors_search_like_uiautomator(u2: ServerOnLoop) -> None:
    _launch_shop(u2)
    u2.rpc("click", selector(text="Sign in"))
    order_list = selector(resourceId="com.example.shop:id/orders")
    rows = _chain(order_list, ("child", selector(className="android.widget.TextView")))
    assert u2.rpc("getText", rows) == "Order 1003"
    assert u2.rpc("count", rows) == 3
    second = _chain(order_list, ("child", selector(className="android.widget.TextView", instance=1)))
    assert u2.rpc("getText", second) == "Order 1002"
    # fromParent: among the children of the matched node's parent, itself included
    beside = _chain(selector(text="Order 1001"), ("sibling", selector(textStartsWith="Order 100")))
    assert u2.rpc("getText", beside) == "Order 1003"
    not_inside = _chain(selector(text="New order"), ("child", selector(text="Refresh")))
    assert u2.rpc("exist", not_inside) is False
    bad = _chain(selector(text="x"), ("cousin", selector(text="y")))
    with pytest.raises(RpcFailure) as info:
        u2.rpc("exist", bad)
    assert "'child' or 'sibling'" in info.value.data


def test_parse_error_is_answered_not_dropped(u2: ServerOnLoop) -> None:
    status, body = u2.http("POST", "/jsonrpc/0", b"{not json")
    assert status == 200
    assert json.loads(body)["error"]["code"] == -32700


def test_device_info_fields(u2: ServerOnLoop) -> None:
    info = u2.rpc("deviceInfo")
    assert info["displayWidth"] == 1080
    assert info["displayHeight"] == 2340
    assert info["currentPackageName"] == "com.google.android.apps.nexuslauncher"
    assert info["sdkInt"] == 34
    assert info["screenOn"] is True
    _launch_shop(u2)
    assert u2.rpc("deviceInfo")["currentPackageName"] == SHOP


def test_dump_is_android_xml_of_the_screen(u2: ServerOnLoop) -> None:
    _launch_shop(u2)
    xml = u2.rpc("dumpWindowHierarchy", False, 50)
    assert xml.startswith("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\r\n")
    assert '<hierarchy rotation="0">' in xml
    root = ET.fromstring(xml.encode())
    texts = {node.get("text") for node in root.iter("node")}
    assert "Sign in" in texts
    shallow = ET.fromstring(u2.rpc("dumpWindowHierarchy", False, 1).encode())
    assert len(list(shallow.iter("node"))) == 1


def test_object_not_found_is_the_java_exception(u2: ServerOnLoop) -> None:
    with pytest.raises(RpcFailure) as info:
        u2.rpc("objInfo", selector(text="missing"))
    assert info.value.code == -32001
    assert info.value.message == "androidx.test.uiautomator.UiObjectNotFoundException"
    assert "text='missing'" in info.value.data


def test_obj_info_and_click_by_coordinates_sign_in(u2: ServerOnLoop) -> None:
    _launch_shop(u2)
    info = u2.rpc("objInfo", selector(text="Sign in"))
    assert info["className"] == "android.widget.Button"
    assert info["resourceName"] == "com.example.shop:id/sign_in"
    assert info["clickable"] is True
    b = info["visibleBounds"]
    assert u2.rpc("click", (b["left"] + b["right"]) / 2, (b["top"] + b["bottom"]) / 2.0) is True
    assert u2.rpc("exist", selector(text="New order")) is True
    assert u2.on_loop(lambda: u2.device.phone.foreground_activity()) == "com.example.shop.OrdersActivity"


def test_selector_semantics(u2: ServerOnLoop) -> None:
    _launch_shop(u2)
    u2.rpc("click", selector(text="Sign in"))
    rows = selector(resourceId="com.example.shop:id/order_row")
    assert u2.rpc("count", rows) == 3
    assert u2.rpc("getText", {**rows, "instance": 1, "mask": rows["mask"] | 0x1000000}) == "Order 1002"
    assert u2.rpc("count", selector(resourceId="com.example.shop:id/order_row", instance=2)) == 1
    assert u2.rpc("count", selector(resourceId="com.example.shop:id/order_row", instance=5)) == 0
    assert u2.rpc("exist", selector(textContains="rder 100")) is True
    assert u2.rpc("exist", selector(textContains="ORDER")) is False  # case-sensitive, as UiSelector
    assert u2.rpc("exist", selector(textMatches=r"Order \d+")) is True
    assert u2.rpc("exist", selector(textMatches=r"Order")) is False  # whole-string match
    assert u2.rpc("exist", selector(textStartsWith="Pay")) is True
    assert u2.rpc("exist", selector(className="android.widget.Button", text="Refresh")) is True
    assert u2.rpc("exist", selector(text="Refresh", clickable=False)) is False
    assert u2.rpc("exist", selector(resourceIdMatches=r".*:id/pay")) is True
    assert u2.rpc("exist", selector(packageName=SHOP, text="Orders")) is True
    assert len(u2.rpc("objInfoOfAllInstances", rows)) == 3


def test_wait_for_exists_really_waits_for_a_delayed_widget(u2: ServerOnLoop) -> None:
    model = AppModel.from_dict(
        {
            "schemaVersion": 1,
            "apps": [
                {
                    "package": "com.example.slow",
                    "label": "Slow",
                    "startScreen": "main",
                    "screens": [
                        {
                            "id": "main",
                            "widgets": [{"id": "late", "text": "Ready", "appearAfterMs": 400}],
                        }
                    ],
                }
            ],
        }
    )
    slow = ServerOnLoop(model)
    try:
        slow.on_loop(lambda: slow.device.phone.launch("com.example.slow"))
        assert slow.rpc("waitForExists", selector(text="Ready"), 50) is False
        started = time.monotonic()
        assert slow.rpc("waitForExists", selector(text="Ready"), 5000) is True
        assert 0.2 < time.monotonic() - started < 2
        assert slow.rpc("waitUntilGone", selector(text="Ready"), 100) is False
    finally:
        slow.close()


def test_set_text_focuses_and_replaces_then_toast_after_save(u2: ServerOnLoop) -> None:
    _launch_shop(u2)
    u2.rpc("click", selector(text="Sign in"))
    u2.rpc("click", selector(text="New order"))
    order = selector(resourceId="com.example.shop:id/order")
    assert u2.rpc("setText", order, "A-1") is True
    assert u2.rpc("setText", order, "A-42") is True
    assert u2.rpc("getText", order) == "A-42"
    assert u2.rpc("setText", selector(text="Save"), "x") is False  # a button takes no text
    u2.rpc("click", selector(text="Save"))
    assert u2.rpc("getLastToast") == "Saved"
    u2.rpc("clearLastToast")
    assert u2.rpc("getLastToast") is None


def test_clipboard_paste_types_into_the_focused_field(u2: ServerOnLoop) -> None:
    _launch_shop(u2)
    user = selector(resourceId="com.example.shop:id/user")
    u2.rpc("click", user)
    u2.rpc("setClipboard", None, "alice")
    assert u2.rpc("getClipboard") == "alice"
    u2.rpc("pasteClipboard")
    assert u2.rpc("getText", user) == "alice"
    u2.rpc("pressKeyCode", 67)  # delete
    u2.rpc("pressKeyCode", 29, 1)  # shift+a
    assert u2.rpc("getText", user) == "alicA"
    u2.rpc("clearInputText")
    assert u2.rpc("getText", user) == ""


def test_keys_and_swipe(u2: ServerOnLoop) -> None:
    _launch_shop(u2)
    assert u2.rpc("pressKey", "home") is True
    assert u2.rpc("deviceInfo")["currentPackageName"] == "com.google.android.apps.nexuslauncher"
    with pytest.raises(RpcFailure) as info:
        u2.rpc("pressKey", "warp")
    assert "unknown key 'warp'" in info.value.data
    assert u2.rpc("swipe", 540, 1800, 540, 600, 20) is True
    assert u2.rpc("pressKeyCode", 4) is True


def test_take_screenshot_is_a_readable_jpeg_of_the_screen(u2: ServerOnLoop) -> None:
    _launch_shop(u2)
    image = Image.open(io.BytesIO(base64.b64decode(u2.rpc("takeScreenshot", 1, 80))))
    assert image.format == "JPEG"
    assert image.size == (1080, 2340)
    half = Image.open(io.BytesIO(base64.b64decode(u2.rpc("takeScreenshot", 0.5, 50))))
    assert half.size == (540, 1170)


def test_stop_closes_the_port(u2: ServerOnLoop) -> None:
    port = u2.port
    u2.run(u2.server.stop())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    u2.port = u2.run(u2.server.start())
    assert u2.http("GET", "/ping") == (200, b"pong")


def test_head_without_body_gets_an_interim_100_continue(u2: ServerOnLoop) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}).encode()
    head = b"POST /jsonrpc/0 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", u2.port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while not answer.endswith(b"}"):
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'"result": "pong"}')


def test_scroll_forward_to_end_and_to_a_target(u2: ServerOnLoop) -> None:
    u2.on_loop(lambda: u2.device.phone.launch("com.example.catalogue"))
    scrollable = selector(scrollable=True)
    assert u2.rpc("exist", selector(text="Item 30")) is False
    assert u2.rpc("scrollTo", scrollable, selector(text="Item 30"), True) is True
    assert u2.rpc("exist", selector(text="Item 30")) is True
    assert u2.rpc("scrollToEnd", scrollable, True, 50, 20) is True
    assert u2.rpc("scrollForward", scrollable, True, 20) is False  # nothing more below
    assert u2.rpc("scrollBackward", scrollable, True, 20) is True
    assert u2.rpc("scrollToBeginning", scrollable, True, 50, 20) is True
    assert u2.rpc("exist", selector(text="Item 1")) is True
    assert u2.rpc("scrollToEnd", scrollable, True, 50, 20) is True
    assert u2.rpc("scrollTo", scrollable, selector(text="Item 2"), True) is True  # above: scrolls back
    assert u2.rpc("scrollTo", scrollable, selector(text="Item 999"), True) is False


def test_unmodelled_methods_say_what_to_use_instead(u2: ServerOnLoop) -> None:
    with pytest.raises(RpcFailure) as info:
        u2.rpc("childByText", selector(text="a"), selector(text="b"), "c")
    assert info.value.message == "java.lang.UnsupportedOperationException"
    assert "child(text=...)" in info.value.data


def test_pinch_and_two_finger_gestures_act_as_on_a_phone(u2: ServerOnLoop) -> None:
    u2.on_loop(lambda: u2.device.phone.launch("com.example.catalogue"))
    scrollable = selector(scrollable=True)
    screen = u2.rpc("dumpWindowHierarchy", False, 50)
    # a pinch on a list: nothing zooms and the list stays where it was
    assert u2.rpc("pinchIn", scrollable, 50, 10) is True
    assert u2.rpc("pinchOut", scrollable, 80, 10) is True
    assert u2.rpc("gesture", scrollable, {"x": 300, "y": 1500}, {"x": 700, "y": 1500},
                  {"x": 100, "y": 1500}, {"x": 900, "y": 1500}, 10) is True  # fmt: skip
    assert u2.rpc("dumpWindowHierarchy", False, 50) == screen
    with pytest.raises(RpcFailure) as info:
        u2.rpc("pinchIn", scrollable, 150, 10)
    assert "Percent must be between 0 and 100" in info.value.data
    with pytest.raises(RpcFailure) as info:
        u2.rpc("pinchIn", selector(text="no such thing"), 50, 10)
    assert "UiObjectNotFoundException" in info.value.message
    # two fingers moving up together drag the list as one would
    assert u2.rpc("gesture", scrollable, {"x": 400, "y": 1800}, {"x": 700, "y": 1800},
                  {"x": 400, "y": 800}, {"x": 700, "y": 800}, 40) is True  # fmt: skip
    assert u2.rpc("exist", selector(text="Item 1")) is False


def test_start_returns_before_the_loop_runs_anything_else(u2: ServerOnLoop) -> None:
    """So that the device maps port 9008 before it handles the client's first ping."""
    fresh = U2Server(u2.device)

    async def start_and_look() -> tuple[int, list[int]]:
        ran: list[int] = []
        asyncio.get_running_loop().call_soon(ran.append, 1)
        port = await fresh.start()
        return port, list(ran)

    port, ran_meanwhile = u2.run(start_and_look())
    assert ran_meanwhile == []
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1000).endswith(b"pong")
    finally:
        u2.run(fresh.stop())
