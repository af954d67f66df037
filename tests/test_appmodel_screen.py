"""The app model's screen renderer at a scale (the simulator's screens) and its palette."""

from __future__ import annotations

from PIL import Image, ImageChops

from interpreter.appmodel import PhoneState, sample_apps, screen


def _shop() -> PhoneState:
    phone = PhoneState(sample_apps())
    phone.launch("com.example.shop")
    return phone


def test_drawing_at_a_scale_is_the_same_picture_smaller() -> None:
    phone = _shop()
    root = phone.hierarchy()
    full = screen.draw_screen(root, phone.width, phone.height, "09:41")
    small = screen.draw_screen(root, phone.width, phone.height, "09:41", scale=1 / 3)
    assert full.size == (1080, 2340)
    assert small.size == (360, 780)
    # the same picture: the full one scaled down differs from the small one only at edges
    shrunk = full.resize(small.size, Image.Resampling.BOX)
    difference = ImageChops.difference(shrunk, small).convert("L")
    histogram = difference.histogram()
    close = sum(histogram[:48])
    assert close / sum(histogram) > 0.97
    # and a second drawing (labels from the cache) is identical to the first
    again = screen.draw_screen(root, phone.width, phone.height, "09:41", scale=1 / 3)
    assert again.tobytes() == small.tobytes()


def test_the_fingerprint_changes_with_what_is_drawn_only() -> None:
    phone = _shop()
    before = screen.fingerprint(phone.hierarchy())
    phone.tap(540, 2000)  # nothing there
    assert screen.fingerprint(phone.hierarchy()) == before
    user = next(n for n in phone.hierarchy().walk() if n.content_desc == "User")
    phone.tap(*user.bounds.center)
    phone.input_text("alice")
    assert screen.fingerprint(phone.hierarchy()) != before


def test_the_palette_holds_the_drawn_colours_so_a_palette_picture_keeps_them() -> None:
    phone = _shop()
    small = screen.draw_screen(phone.hierarchy(), phone.width, phone.height, "09:41", scale=1 / 3)
    converted = small.quantize(palette=screen.palette(), dither=Image.Dither.NONE).convert("RGB")
    sign_in = next(n for n in phone.hierarchy().walk() if n.text == "Sign in").bounds
    point = (sign_in.left // 3 + 10, sign_in.top // 3 + 4)
    assert converted.getpixel(point) == small.getpixel(point) == (26, 115, 232)
    assert converted.getpixel((5, 400)) == (250, 250, 250)
