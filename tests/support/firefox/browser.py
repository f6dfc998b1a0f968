"""Starting Debian's firefox-esr headless with a throw-away profile that talks only to loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"

PREFS = {
    "dom.push.testing.allowInsecureServerURL": True,
    "dom.push.connection.enabled": True,
    "dom.push.testing.ignorePermission": True,
    "dom.push.maxQuotaPerSubscription": 1024,
    "permissions.default.desktop-notification": 1,
    "alerts.useSystemBackend": False,
    "dom.serviceWorkers.testing.enabled": True,
    "dom.security.https_first": False,
    "dom.security.https_only_mode": False,
    # every background service off: nothing may try to leave the machine
    "app.update.auto": False,
    "app.update.enabled": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.ping-centre.telemetry": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "extensions.getAddons.cache.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "extensions.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.trr.mode": 5,
    "services.settings.server": "http://127.0.0.1:9/v1",
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_profile(profile: Path, push_server_url: str, marionette_port: int) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    prefs = {**PREFS, "dom.push.serverURL": push_server_url, "marionette.port": marionette_port}
    lines = []
    for name, value in prefs.items():
        text = (
            ("true" if value else "false")
            if isinstance(value, bool)
            else (str(value) if isinstance(value, int) else f'"{value}"')
        )
        lines.append(f'user_pref("{name}", {text});')
    (profile / "user.js").write_text("\n".join(lines) + "\n")


async def start_firefox(home: Path, push_server_url: str) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    profile = home / "profile"
    write_profile(profile, push_server_url, port)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "MOZ_HEADLESS": "1",
        "MOZ_DISABLE_NONLOCAL_CONNECTIONS": "1",
        "MOZ_CRASHREPORTER_DISABLE": "1",
    }
    (home / "run").mkdir(mode=0o700, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        FIREFOX,
        "--headless",
        "--marionette",
        "--remote-allow-system-access",
        "--no-remote",
        "--profile",
        str(profile),
        env=env,
        stdout=(home / "firefox.log").open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )
    return proc, port
