"""The device shell's language, run directly on a `VirtualDevice` (no adb needed, so fast)."""

from __future__ import annotations

import asyncio
import re
import time

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


def test_background_jobs_wait_kill_read_and_scripts() -> None:
    # adbutils' start_recording pushes a script like this and runs `sh FILE PATH` on a v1 stream,
    # sends a newline to stop, and reads until the stream closes.
    script = 'screenrecord "$1" &\nPID=$!\nread ANY\nkill -INT $PID\nwait\necho "done $ANY $# $?"\n'

    async def go() -> tuple[str, str, int, bytes]:
        device = VirtualDevice(sample_apps(), 5554)
        device.fs.write("/sdcard/rec.sh", script.encode())
        stream_input = b"go\n"

        async def read_input(size: int) -> bytes:
            nonlocal stream_input
            await asyncio.sleep(0.2)  # the host types after a while
            if not stream_input:
                raise EOFError
            data, stream_input = stream_input[:size], stream_input[size:]
            return data

        out, err = Sink(), Sink()
        status = await Shell(device, read_input=read_input).run("sh /sdcard/rec.sh /sdcard/v.mp4", out, err)
        return out.getvalue().decode(), err.getvalue().decode(), status, device.fs.read("/sdcard/v.mp4")

    out, err, status, video = asyncio.run(go())
    assert (out, err, status) == ("done go 1 0\n", "", 0)
    assert video[4:8] == b"ftyp"  # a complete MP4: SIGINT ended the recording cleanly
    assert run("sleep 5 & P=$!; kill $P; wait $P; echo $?") == ("143\n", "", 0)
    assert run("sleep 0.1 & echo started; echo $! | wc -l")[0] == "started\n1\n"
    assert run("echo a b c | read X Y; echo $X/$Y; read Z < /none")[0] == "a/b c\n"
    assert run("wait 99999")[2] == 127
    assert run("sh /no/such.sh")[1:] == ("/system/bin/sh: /no/such.sh: No such file or directory\n", 127)


def test_test_stat_df_uptime_proc_and_dumpsys_meminfo() -> None:
    shell = Shell(VirtualDevice(sample_apps(), 5554))
    checks = "; ".join(
        [
            "[ -d /sdcard ] && echo d",
            "[ -f /sdcard ] || echo not-f",
            "test -e /nope; echo $?",
            '[ 3 -gt 2 -a "x" = x ] && echo and',
            "[ -s /proc/meminfo ] || echo s",  # /proc files show size 0, as on Linux
            '[ -z "" ] && [ -n a ] && echo zn',
        ]
    )
    assert run(checks, shell)[0] == "d\nnot-f\n1\nand\ns\nzn\n"
    assert run("[ 1 -eq a ]; echo $?", shell)[0:2] == ("2\n", "[: a: bad number\n")
    assert run("[ 1 = 1; echo $?", shell)[0:2] == ("2\n", "[: missing ]\n")
    assert run('stat -c "%n %a %F" /sdcard /proc/meminfo', shell)[0] == (
        "/sdcard 770 directory\n/proc/meminfo 444 regular file\n"
    )
    assert run("stat /nope", shell)[1:] == ("stat: '/nope': No such file or directory\n", 1)
    assert (
        run("grep -c processor /proc/cpuinfo; head -1 /proc/meminfo", shell)[0]
        == "4\nMemTotal:        2030000 kB\n"
    )
    assert run("cat /proc/version", shell)[0].startswith("Linux version 6.1")
    assert " up " in run("uptime", shell)[0]
    first, second = (float(run("cat /proc/uptime", shell)[0].split()[0]) for _ in range(2))
    assert 3600 < first <= second
    assert run("df -h /sdcard", shell)[0].splitlines()[1].endswith("/storage/emulated")
    assert run("which sh test", shell)[0] == "/system/bin/sh\n/system/bin/test\n"
    assert run("dumpsys meminfo com.example.shop", shell)[0].endswith(
        "No process found for: com.example.shop\n"
    )
    run("am start -n com.example.shop/.LoginActivity", shell)
    meminfo = run("dumpsys meminfo com.example.shop", shell)[0]
    total = int(re.search(r"TOTAL:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    assert "[com.example.shop] **" in meminfo
    assert re.search(rf"^\s+TOTAL\s+{total}\s", meminfo, re.M)
    assert "com.example.shop" in run("dumpsys cpuinfo", shell)[0]


def test_pm_list_packages_flags_users_current_user_and_svc() -> None:
    shell = Shell(VirtualDevice(sample_apps(), 5554))
    lines = run("pm list packages -f -U", shell)[0].splitlines()
    assert "package:/system/framework/framework-res.apk=android uid:1000" in lines
    shop = next(line for line in lines if line.endswith("=com.example.shop uid:" + line.rsplit(":", 1)[-1]))
    apk = r"/data/app/~~\S+==/com\.example\.shop-1/base\.apk"
    assert re.fullmatch(rf"package:{apk}=com\.example\.shop uid:10\d{{3}}", shop)
    assert run("pm path com.example.shop", shell)[0] == shop.split("=com.example.shop")[0] + "\n"
    assert run("pm list users", shell)[0] == "Users:\n\tUserInfo{0:Owner:c13} running\n"
    assert run("am get-current-user", shell)[0] == "0\n"
    assert run("svc wifi disable; settings get global wifi_on; svc data enable", shell)[0] == "0\n"
    assert run("svc power stayon false; settings get global stay_on_while_plugged_in", shell)[0] == "0\n"
    assert run("svc nfc enable", shell)[2] == 1


def test_the_shell_user_writes_only_where_a_phone_lets_it() -> None:
    shell = Shell(VirtualDevice(sample_apps(), 5554))
    assert run("echo hi > /x.txt", shell)[1:] == (
        "/system/bin/sh: can't create /x.txt: Read-only file system\n",
        1,
    )
    assert run("touch /system/y", shell)[1:] == ("touch: /system/y: Read-only file system\n", 1)
    assert run("mkdir /data/foo", shell)[1:] == ("mkdir: /data/foo: Permission denied\n", 1)
    assert run("rm -rf /system; ls / | grep -c system", shell)[:2] == (
        "1\n",
        "rm: /system: Read-only file system\n",
    )
    assert run("screencap -p /system/s.png", shell)[1:] == (
        "Error opening file: /system/s.png (Read-only file system)\n",
        1,
    )
    assert run("uiautomator dump /data/d.xml", shell)[2] == 1
    writable = (
        "mkdir -p /data/local/tmp/a && touch /data/local/tmp/a/f /sdcard/Download/g && ls /data/local/tmp/a"
    )
    assert run(writable, shell) == ("f\n", "", 0)
    assert run("rm -f /sdcard/none; echo $?", shell)[:2] == ("0\n", "")


def test_monkey_injects_seeded_events_into_its_package() -> None:
    def stress(seed: int) -> tuple[str, str]:
        device = VirtualDevice(sample_apps(), 5554)
        out, _, status = run(f"monkey -p com.example.shop -s {seed} -v 300", Shell(device))
        assert status == 0
        assert out.endswith("// Monkey finished\n")
        assert "Events injected: 300\n" in out
        # Its last event may be a BACK out of the app, as on a phone; it never ends in another app.
        ended_in = device.phone.foreground_package()
        assert ended_in in ("com.example.shop", "com.google.android.apps.nexuslauncher")
        return ended_in, device.phone.foreground_activity()

    assert stress(11) == stress(11)  # a seed replays the same events
    no_count = run("monkey -p com.example.shop")
    assert no_count[1:] == ("** Error: Invalid event count (monkey needs a COUNT of events)\n", 1)


def test_content_reads_and_writes_the_settings_provider() -> None:
    device = VirtualDevice(sample_apps(), 5554)
    shell = Shell(device)
    query = "content query --uri content://settings/system --projection name:value --where \"name='{}'\""
    assert run(query.format("screen_brightness"), shell)[0] == "Row: 0 name=screen_brightness, value=102\n"
    assert (
        run(
            "content insert --uri content://settings/system --bind name:s:user_rotation --bind value:i:1",
            shell,
        )[2]
        == 0
    )
    assert device.phone.rotation == 1  # the rotation lock turns the display, as `settings put` does
    assert run("settings put system user_rotation 0; settings get system user_rotation", shell)[0] == "0\n"
    assert (
        run("content delete --uri content://settings/system --where \"name='user_rotation'\"", shell)[2] == 0
    )
    assert run(query.format("user_rotation"), shell)[0] == "No result found.\n"
    unknown = run("content query --uri content://contacts/people", shell)
    assert unknown[2] == 1
    assert "Unknown URI" in unknown[1]


def test_an_interactive_shell_keeps_its_prompt_while_a_job_runs_and_hangs_it_up_at_exit() -> None:
    from emulator.services import _interactive

    class Typed:
        def __init__(self, *lines: bytes) -> None:
            self.lines = list(lines)

        async def read(self) -> bytes:
            return self.lines.pop(0) if self.lines else b""

    async def go() -> tuple[str, float, bool]:
        shell = Shell(VirtualDevice(sample_apps(), 5554))
        out = Sink()
        started = time.monotonic()
        await _interactive(shell, Typed(b"sleep 30 &\n", b"echo job $!\n", b"exit\n"), out)  # type: ignore[arg-type]
        jobs = [job.task for job in shell.jobs.values()]
        await asyncio.sleep(0)
        return out.getvalue().decode(), time.monotonic() - started, all(task.done() for task in jobs)

    output, took, hung_up = asyncio.run(go())
    assert re.search(r"job \d+\r\n", output)
    assert took < 2
    assert hung_up
