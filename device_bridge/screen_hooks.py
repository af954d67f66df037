"""What the frame recorder hooks into a driver, the same for uiautomator2 and Appium: a wait before
the next call that changes the screen, a call after the next look at it, and counts of both.

A driver mixes `ScreenHooks` in, calls `_looked()` when a look at the screen (a dump, the app in
front) has its answer and `_settle(connection)` before each call that changes the screen, with the
kept connection that call goes on (None: another way, a shell command, the client's own call).
"""

from __future__ import annotations

from collections.abc import Callable


class ScreenHooks:
    _before_change: Callable[[object | None], object] | None = None
    _after_look: Callable[[], object] | None = None
    _changes = 0
    _looks = 0

    def hold_changes_until(self, wait: Callable[[object | None], object] | None) -> None:
        """Have the next call that changes the screen call `wait(connection)` first, with the kept
        connection it goes on or None (a request asked on that connection before it is done first)."""
        self._before_change = wait

    def after_next_look(self, go: Callable[[], object] | None) -> None:
        """Call `go()` once the next look at the screen has its answer, or before the next change."""
        self._after_look = go

    def looks(self) -> tuple[int, int]:
        """(calls that changed the screen, looks at it that have their answer) so far."""
        return self._changes, self._looks

    def _looked(self) -> None:
        self._looks += 1
        go, self._after_look = self._after_look, None
        if go is not None:
            go()

    def _settle(self, connection: object | None = None) -> None:
        # What goes now is asked for before this change: it has not seen it.
        go, self._after_look = self._after_look, None
        if go is not None:
            go()
        self._changes += 1
        wait, self._before_change = self._before_change, None
        if wait is not None:
            wait(connection)
