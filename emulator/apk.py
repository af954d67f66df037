"""What the virtual device learns from an APK it is asked to install: read from the APK itself.

The device runs app models, not Dalvik code, so installing an APK records the package as
installed with what its binary `AndroidManifest.xml` declares (package name, version, launcher
activity, instrumentations); the manifest is decoded by `pyaxmlparser`. `pm list packages`,
`dumpsys package`, `pm list instrumentation` and `am instrument` answer from that record.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass

from pyaxmlparser import APK

__all__ = ["ApkError", "ApkInfo", "Instrumentation", "read_apk"]

_ANDROID_NS = "{http://schemas.android.com/apk/res/android}"
_MANIFEST = "AndroidManifest.xml"


class ApkError(ValueError):
    """The bytes are not an installable APK (not a zip, no manifest, no package name)."""


@dataclass(frozen=True, slots=True)
class Instrumentation:
    """An `<instrumentation>` of a manifest: `am instrument -w PACKAGE/NAME` runs it against `target`."""

    package: str
    name: str
    target: str

    @property
    def component(self) -> str:
        return f"{self.package}/{self.name}"


@dataclass(frozen=True, slots=True)
class ApkInfo:
    package: str
    version_code: int | None
    version_name: str | None
    min_sdk: int | None
    target_sdk: int | None
    launchable_activity: str | None
    label: str
    instrumentations: tuple[Instrumentation, ...]
    permissions: tuple[str, ...]
    services: tuple[str, ...]
    size: int
    # Services an input method binds to (permission BIND_INPUT_METHOD): what `ime list -a` shows.
    input_methods: tuple[str, ...] = ()


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def read_apk(data: bytes, source: str = "the APK") -> ApkInfo:
    """Decode the manifest of an APK given as bytes. Raises `ApkError` saying what is wrong."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if _MANIFEST not in archive.namelist():
                raise ApkError(f"{source} has no {_MANIFEST}: it is a zip file but not an APK")
    except zipfile.BadZipFile as exc:
        raise ApkError(f"{source} is not an APK: {exc}") from exc
    # pyaxmlparser logs every oddity of a manifest at warning level; an APK that decodes is all we need.
    logging.getLogger("pyaxmlparser").setLevel(logging.ERROR)
    try:
        apk = APK(data, raw=True)
    except Exception as exc:  # the parser raises many kinds on a broken manifest
        raise ApkError(f"the {_MANIFEST} of {source} cannot be decoded: {exc}") from exc
    package = str(apk.package or "")
    if not apk.is_valid_APK() or not package:
        raise ApkError(f"the {_MANIFEST} of {source} names no package")
    manifest = apk.get_android_manifest_xml()
    instrumentations = tuple(
        Instrumentation(
            package=package,
            name=_qualify(package, str(element.get(f"{_ANDROID_NS}name") or "")),
            target=str(element.get(f"{_ANDROID_NS}targetPackage") or package),
        )
        for element in manifest.iter("instrumentation")
        if element.get(f"{_ANDROID_NS}name")
    )
    main = apk.get_main_activity()
    return ApkInfo(
        package=package,
        version_code=_int_or_none(apk.version_code),
        version_name=str(apk.version_name) if apk.version_name else None,
        min_sdk=_int_or_none(apk.get_min_sdk_version()),
        target_sdk=_int_or_none(apk.get_target_sdk_version()),
        launchable_activity=_qualify(package, str(main)) if main else None,
        label=str(apk.application or package),
        instrumentations=instrumentations,
        permissions=tuple(sorted({str(p) for p in apk.get_permissions()})),
        services=tuple(_qualify(package, str(service)) for service in apk.get_services()),
        size=len(data),
        input_methods=tuple(
            _qualify(package, str(element.get(f"{_ANDROID_NS}name")))
            for element in manifest.iter("service")
            if element.get(f"{_ANDROID_NS}permission") == "android.permission.BIND_INPUT_METHOD"
            and element.get(f"{_ANDROID_NS}name")
        ),
    )


def _qualify(package: str, name: str) -> str:
    """Manifest class names may be relative (`.Main`): make them full."""
    return package + name if name.startswith(".") else name
