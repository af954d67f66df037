"""The screenshot renderer: drawn from the hierarchy, readable, cached until the screen changes."""

from __future__ import annotations

import io

from PIL import Image

from interpreter.appmodel import PhoneState, sample_apps, screen


def _shop() -> PhoneState:
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    return phone


def _node(phone: PhoneState, text: str):  # type: ignore[no-untyped-def]
    return next(n for n in phone.hierarchy().walk() if n.text == text)


def test_png_has_the_screen_size_and_draws_widgets_at_their_bounds() -> None:
    phone = _shop()
    image = Image.open(io.BytesIO(screen.render_png(phone)))
    assert image.format == "PNG"
    assert image.size == (phone.width, phone.height)
    button = _node(phone, "Sign in").bounds
    # a button is a filled blue box: its corner area inside is blue, the background outside is not
    inside = image.getpixel((button.left + 30, button.top + 10))
    outside = image.getpixel((button.left + 30, button.bottom + 8))
    assert isinstance(inside, tuple)
    assert inside[2] > 200
    assert inside[0] < 80
    assert outside != inside
    # its label is drawn: the centre row holds light text pixels on the blue
    row = [image.getpixel((x, button.center[1])) for x in range(button.left, button.right)]
    assert any(isinstance(p, tuple) and min(p) > 200 for p in row)


def test_typed_text_and_toast_change_the_picture() -> None:
    phone = _shop()
    before = screen.render_png(phone)
    user = next(n for n in phone.hierarchy().walk() if n.content_desc == "User")
    phone.tap(*user.bounds.center)
    phone.input_text("alice")
    after = screen.render_png(phone)
    assert after != before
    phone.tap(*_node(phone, "Sign in").bounds.center)
    phone.tap(*_node(phone, "New order").bounds.center)
    phone.tap(*_node(phone, "Save").bounds.center)
    toast = _node(phone, "Saved").bounds
    image = Image.open(io.BytesIO(screen.render_png(phone))).convert("RGB")
    assert image.getpixel((toast.center[0], toast.top + 5)) == (60, 64, 67)


def test_unchanged_screen_is_served_from_the_cache() -> None:
    phone = _shop()
    first = screen.render_jpeg(phone, 80)
    assert screen.render_jpeg(phone, 80) is first
    assert Image.open(io.BytesIO(first)).format == "JPEG"
    smaller = Image.open(io.BytesIO(screen.render_jpeg(phone, 50, 0.25)))
    assert smaller.size == (270, 585)


def test_two_phones_rendered_from_two_threads_do_not_mix() -> None:
    """Each emulator renders on its own loop thread; frames must never cross between devices."""
    from concurrent.futures import ThreadPoolExecutor

    def frames(package: str) -> set[bytes]:
        phone = PhoneState(sample_apps())
        phone.launch(package)
        out = set()
        for _ in range(5):
            out.add(screen.render_png(phone))
            phone.tap(540, 2000)  # nothing there: the screen stays the same
        return out

    with ThreadPoolExecutor(2) as pool:
        shop, settings = pool.map(frames, ["com.example.shop", "com.android.settings"])
    # one frame each (two if the status bar's clock turned a minute meanwhile), none shared
    assert 1 <= len(shop) <= 2
    assert 1 <= len(settings) <= 2
    assert not shop & settings
