"""The service URLs of a running `collab dev`, in a file in its data dir.

`collab dev` picks free ports at every start, so an operator command (`collab replay`, `collab
backup`, …) cannot guess them. The running instance writes them to `<data dir>/collab-dev.json`
(mode 0600: the URLs carry no password today, but the file names the instance's processes) and
removes the file when it stops. A reader trusts the file only while the pid it names is alive, so
a `kill -9`'d instance's leftover file is reported as stale instead of sending a command to
ports that some other program may hold by now.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SERVICES_FILE = "collab-dev.json"


@dataclass(frozen=True)
class DevServices:
    pid: int
    database_url: str
    nats_url: str
    redis_url: str
    http_url: str
    # The SMTP server the node sends mail to (`collab dev`'s mail catcher), "" if mail is not
    # sent over SMTP; absent from files written before it existed.
    smtp_url: str = ""


class StaleServicesFile(RuntimeError):
    """The file names a `collab dev` process that is no longer running."""


def services_path(data_dir: Path) -> Path:
    return data_dir / SERVICES_FILE


def write_services(data_dir: Path, services: DevServices) -> Path:
    """Write atomically (rename), so a reader never sees half a file."""
    path = services_path(data_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(services), handle, indent=2)
    os.replace(tmp, path)
    return path


def remove_services(data_dir: Path, pid: int) -> None:
    """Remove the file if it is still ours (a second instance may have replaced it)."""
    path = services_path(data_dir)
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        if read_file(path).pid == pid:
            path.unlink()


def read_file(path: Path) -> DevServices:
    return DevServices(**json.loads(path.read_text()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def find_running(data_dir: Path) -> DevServices | None:
    """The running instance's services, None if there is no file; raises on a stale one."""
    path = services_path(data_dir)
    try:
        services = read_file(path)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:
        raise StaleServicesFile(f"{path} is not a services file: {err}") from err
    if not _alive(services.pid):
        raise StaleServicesFile(
            f"{path} names collab dev pid {services.pid}, which is not running"
            " (start `collab dev` again or set the service URLs)"
        )
    return services
