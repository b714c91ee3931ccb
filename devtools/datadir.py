"""Where `make run` keeps what must outlive it: the data directory.

    .data/                  (CHAT_DATA_DIR moves it; git-ignored)
      jwt-secret            the development secret tokens are signed with (mode 0600)
      demo-customer         the customer of the token make run prints
      lock                  held by the running make run (one per directory)
      dynamodb/             the table: snapshot, journal and stream checkpoint (devtools.journal)
      files/                the files' objects (devtools.filestore)
"""

import fcntl
import os
import secrets
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / ".data"
SECRET_FILE = "jwt-secret"


class DataDirInUse(RuntimeError):
    pass


def path() -> Path:
    """CHAT_DATA_DIR, else .data/ in the repository (wherever make is run from)."""
    configured = os.environ.get("CHAT_DATA_DIR")
    return Path(configured).expanduser().resolve() if configured else DEFAULT


def ephemeral() -> bool:
    """CHAT_EPHEMERAL=1 (make run-fresh): the table starts empty and is not kept."""
    return os.environ.get("CHAT_EPHEMERAL", "").strip().lower() not in ("", "0", "false", "no")


def ensure(directory: Path) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _read_or_create(file: Path, make) -> str:
    try:
        descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = file.read_text().strip()
        if value:
            return value
        file.unlink()  # an empty file (interrupted creation): make it again
        return _read_or_create(file, make)
    value = make()
    with os.fdopen(descriptor, "w") as out:
        out.write(value + "\n")
        out.flush()
        os.fsync(out.fileno())
    return value


def secret(directory: Path) -> str:
    """The data directory's development secret, made (mode 0600) on first use."""
    return _read_or_create(ensure(directory) / SECRET_FILE, lambda: secrets.token_urlsafe(32))


def existing_secret(directory: Path) -> str | None:
    try:
        return (directory / SECRET_FILE).read_text().strip() or None
    except OSError:
        return None


def demo_customer(directory: Path) -> str:
    return _read_or_create(ensure(directory) / "demo-customer", lambda: str(uuid.uuid4()))


def lock(directory: Path):
    """Hold the directory for this process (released by the kernel when it
    exits, however it exits). Two runs appending to one journal would corrupt it."""
    handle = open(ensure(directory) / "lock", "a+")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DataDirInUse(f"{directory} is in use by {holder}: stop that make run, or set CHAT_DATA_DIR "
                           f"to another directory (or CHAT_EPHEMERAL=1)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle
