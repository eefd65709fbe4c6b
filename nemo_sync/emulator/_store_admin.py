"""What the CLI does to a stored emulator's folder without running one: empty it, sign out.

Both work through the database's own transactions, so emulators running on the folder at the
time stay consistent: an emptied store bumps the epoch, which makes them drop what they hold.
Blocking: call them in a thread.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nemo_sync.emulator._rows import ACCOUNT, TOKEN
from nemo_sync.emulator._store import DB_FILE, connect

FILE_FOLDERS = ("media", "renders")


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def empty_folder(data_dir: Path) -> dict[str, int]:
    """Remove every record and stored file; returns how many of each kind went.

    The keys are the record kinds (``session``, ``media``, ``render``, ...) with at least one
    record, and ``files`` for the uploads and renders deleted from disk.
    """
    removed: dict[str, int] = {}
    if (data_dir / DB_FILE).is_file():
        db = connect(data_dir / DB_FILE)
        try:
            db.execute("BEGIN IMMEDIATE")
            removed.update(db.execute("SELECT kind, count(*) FROM records GROUP BY kind"))
            db.execute("DELETE FROM records")
            db.execute("UPDATE meta SET value = value + 1 WHERE key IN ('epoch', 'rev')")
            db.execute("UPDATE meta SET value = 0 WHERE key = 'sessions'")
            db.execute("COMMIT")
        finally:
            db.close()
    files = 0
    for name in FILE_FOLDERS:
        folder = data_dir / name
        files += _count_files(folder)
        shutil.rmtree(folder, ignore_errors=True)
    if files:
        removed["files"] = files
    return removed


def sign_out(data_dir: Path, client_id: str) -> int:
    """Revoke the tokens of the anonymous account of ``client_id``; returns how many.

    The account (its sessions, credits) stays, and a new token can be issued at once: the
    one-token-a-week rule would otherwise refuse the next login on this machine for 7 days.
    """
    if not (data_dir / DB_FILE).is_file():
        return 0
    db = connect(data_dir / DB_FILE)
    try:
        db.execute("BEGIN IMMEDIATE")
        account = None
        for key, body in db.execute("SELECT key, body FROM records WHERE kind = ?", (ACCOUNT,)):
            fields = json.loads(body)
            if fields.get("client_id") == client_id:
                account = key, fields
                break
        if account is None:
            db.execute("COMMIT")
            return 0
        key, fields = account
        tokens = [
            (token, fields_of_token)
            for token, body in db.execute("SELECT key, body FROM records WHERE kind = ?", (TOKEN,))
            if (fields_of_token := json.loads(body)).get("account_id") == key
            and fields_of_token.get("expires_at") != 0
        ]
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'rev'")
        (rev,) = db.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()
        # Expired rather than deleted: an emulator running now merges the change (a sync
        # reads changed rows, it cannot see deleted ones) and refuses the token too.
        update = "UPDATE records SET rev = ?, body = ? WHERE kind = ? AND key = ?"
        db.executemany(
            update, [(rev, json.dumps({**f, "expires_at": 0}), TOKEN, t) for t, f in tokens]
        )
        fields["token_issued_at"] = None
        db.execute(update, (rev, json.dumps(fields), ACCOUNT, key))
        db.execute("COMMIT")
    finally:
        db.close()
    return len(tokens)
