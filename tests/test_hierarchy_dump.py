"""Reading the window hierarchy a phone dumps: characters XML 1.0 forbids, and dumps that are not XML."""

from __future__ import annotations

import pytest

from interpreter import hierarchy
from interpreter.errors import DeviceError
from interpreter.hierarchy import Bounds, HierarchyError, UiNode, from_android_xml, to_android_xml

# A control character, an escape sequence, a vertical tab, NUL, a lone surrogate, U+FFFF, and the
# private-use character the parser carries the others with (it must come back unchanged too).
ODD = "Offer\x01 ends\x1b[0m soon\x0b!\x00 \ud800 \uffff \ue000e000 fine\t"


def screen(*texts: str) -> UiNode:
    widgets = [
        UiNode("android.widget.TextView", Bounds(0, 100 * i, 500, 100 * i + 90), text=t, package="com.x")
        for i, t in enumerate(texts)
    ]
    return UiNode("hierarchy", Bounds(0, 0, 1080, 2340), children=widgets)


def texts(root: UiNode) -> list[str]:
    return [node.text for node in root.children]


def test_raw_forbidden_characters_reach_the_text_unchanged() -> None:
    dump = to_android_xml(screen(ODD, "plain", "a\nb"))
    assert "\x01" in dump
    assert "\x1b" in dump
    assert texts(from_android_xml(dump)) == [ODD, "plain", "a\nb"]


def test_forbidden_character_references_are_read_too() -> None:
    dump = to_android_xml(screen("x", "y")).replace('text="x"', 'text="a&#1;b&#x1B;c&#x0;d&#65;"')
    assert texts(from_android_xml(dump)) == ["a\x01b\x1bc\x00dA", "y"]


def test_bytes_are_read_as_utf8() -> None:
    assert texts(from_android_xml(to_android_xml(screen("é\x02")).encode("utf-8"))) == ["é\x02"]


@pytest.mark.parametrize(
    "dump",
    [
        "ERROR: could not get idle state.",
        "",
        "<hierarchy><node text='cut",
        "<hierarchy>&#99999999;</hierarchy>",
    ],
)
def test_a_dump_that_is_not_xml_is_a_device_error_saying_what_came(dump: str) -> None:
    with pytest.raises(HierarchyError) as raised:
        from_android_xml(dump)
    assert isinstance(raised.value, DeviceError)  # the engine makes it a step failure
    message = str(raised.value)
    assert message.startswith("the window hierarchy the phone sent is not XML (")
    assert repr(dump[:80]) in message
    assert "try again" in message


def test_a_widget_with_unreadable_bounds_is_a_device_error() -> None:
    with pytest.raises(HierarchyError, match="has a widget that cannot be read"):
        from_android_xml('<hierarchy><node class="a" bounds="[0,0][wide,1]"/></hierarchy>')


def test_elements_that_are_not_widgets_are_left_out_with_what_they_hold() -> None:
    dump = (
        '<hierarchy><extra><node class="hidden" bounds="[0,0][1,1]"/></extra>'
        '<android.widget.Button class="android.widget.Button" bounds="[1,2][3,4]" text="Go">'
        '<node class="a.Inner" bounds="[1,2][2,3]"/><meta/></android.widget.Button>'
        '<node class="a.Edit" bounds="[5, 6][7,8]" text="&amp;&#10;x"/></hierarchy>'
    )
    root = from_android_xml(dump)
    assert [(n.class_name, n.text) for n in root.walk()] == [
        ("hierarchy", ""),
        ("android.widget.Button", "Go"),
        ("a.Inner", ""),
        ("a.Edit", "&\nx"),
    ]
    assert root.children[1].bounds == Bounds(5, 6, 7, 8)  # read however the numbers are spaced


def test_bounds_read_once_are_shared_and_the_memory_of_them_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hierarchy, "_BOUNDS_READ", {})
    monkeypatch.setattr(hierarchy, "_BOUNDS_READ_MAX", 2)
    dump = to_android_xml(screen("a", "b"))
    first, again = from_android_xml(dump), from_android_xml(dump)
    assert first == again
    assert first.children[1].bounds is again.children[1].bounds == Bounds(0, 100, 500, 190)
    from_android_xml(to_android_xml(screen("a", "b", "c")))  # a third: the memory starts over
    assert list(hierarchy._BOUNDS_READ) == ["[0,200][500,290]"]
    with pytest.raises(HierarchyError, match="cannot be read"):  # a bad one is not remembered
        from_android_xml('<hierarchy><node class="a" bounds="[0,0][wide,1]"/></hierarchy>')
    assert list(hierarchy._BOUNDS_READ) == ["[0,200][500,290]"]
