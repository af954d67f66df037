"""The device shell's language, run directly on a `VirtualDevice` (no adb needed, so fast)."""

from __future__ import annotations

import asyncio

import pytest

from emulator.device import VirtualDevice
from emulator.shell import Shell
from emulator.shell_io import Sink
from interpreter.appmodel import sample_apps


def run(line: str, shell: Shell | None = None) -> tuple[str, str, int]:
    async def go() -> tuple[str, str, int]:
        sh = shell or Shell(VirtualDevice(sample_apps(), 5554))
        out, err = Sink(), Sink()
        status = await sh.run(line, out, err)
        return out.getvalue().decode(), err.getvalue().decode(), status

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("line", "stdout"),
    [
        ("echo 'single $HOME' \"double $HOME\"", "single $HOME double /\n"),
        ('echo "escaped \\$HOME" \\$HOME', "escaped $HOME $HOME\n"),
        ("echo a'b'\"c\"d", "abcd\n"),
        ("false || echo fallback; echo $?", "fallback\n0\n"),
        ("false && echo never; echo $?", "1\n"),
        ("true | false; echo $?", "1\n"),
        ("A=1 B='two words'; echo $A ${B}!", "1 two words!\n"),
        ("echo one # a comment", "one\n"),
        ("echo first\necho second", "first\nsecond\n"),
        ("echo /data/local/tmp/*.none", "/data/local/tmp/*.none\n"),
        ("cd /data/local; pwd; cd tmp && pwd", "/data/local\n/data/local/tmp\n"),
        ("exit 7; echo never", ""),
        ("exec echo replaced; echo never", "replaced\n"),
        ("printf '%s-%s\\n' a b", "a-b\n"),
        ("echo -n x; echo y", "xy\n"),
        ("echo abcdef | head -c 3; echo; printf '1\\n2\\n3\\n' | tail -n 2", "abc\n2\n3\n"),
        ("getprop no.such.prop fallback", "fallback\n"),
        ("X=5; echo $((X * 2 + 1)) $(( (1 + 2) << 1 )) $((~0)) $((!0)) $((7 % -3))", "11 6 -1 1 1\n"),
        ("echo \"n=$((010 + 0x1f))\" '$((1))'", "n=39 $((1))\n"),
    ],
)
def test_language(line: str, stdout: str) -> None:
    assert run(line)[0] == stdout


def test_exit_status_of_the_last_command() -> None:
    assert run("exit 7; echo never")[2] == 7
    assert run("ls /none")[2] == 1
    assert run("nosuch")[2] == 127


def test_syntax_errors_say_what_is_wrong() -> None:
    _, err, status = run("echo 'unterminated")
    assert status == 2
    assert "syntax error: unterminated quoted string" in err
    assert "unexpected '|'" in run("| echo")[1]
    assert "unexpected end" in run("echo a &&")[1]


def test_redirections() -> None:
    device = VirtualDevice(sample_apps(), 5554)
    shell = Shell(device)
    assert run("echo a > /sdcard/f; echo b >> /sdcard/f; cat < /sdcard/f", shell)[0] == "a\nb\n"
    assert run("ls /none 2>&1 | wc -l", shell)[0] == "1\n"
    assert run("echo to-err >&2", shell)[1] == "to-err\n"
    out, err, status = run("echo x > /no/such/dir/f", shell)
    assert status == 1
    assert "can't create /no/such/dir/f: No such file or directory" in err


def test_variables_persist_within_one_shell_only() -> None:
    shell = Shell(VirtualDevice(sample_apps(), 5554))
    run("export GREETING=hi", shell)
    assert run("echo $GREETING", shell)[0] == "hi\n"
    assert run("sh -c 'GREETING=inner; echo $GREETING'; echo $GREETING", shell)[0] == "inner\nhi\n"
    assert run("echo $GREETING")[0] == "\n"


def test_arithmetic_errors_stop_the_command_and_say_why() -> None:
    out, err, status = run("echo $((1 / 0)); echo $((2 +)); echo $((N = 1)); echo next")
    assert out == "next\n"
    assert "1 / 0: divide by zero" in err
    assert "2 +: missing operand" in err
    assert "not supported" in err
    assert status == 0
