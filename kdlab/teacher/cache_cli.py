"""``kdlab-cache list|show KEY|prune``: see what the teacher cache and the teacher-output cache hold, read
an entry's key, and clear entries. The cache root is ``--cache-dir``, else ``$KDLAB_CACHE``, else the XDG cache."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from kdlab.errors import ConfigError
from kdlab.teacher.cache import OUTPUTS, TEACHERS, cache_root, read_record, record_path, remove_stale_temp_files

KINDS = {TEACHERS: "teacher", OUTPUTS: "outputs"}  # folder -> what ``list`` calls its entries
SUFFIXES = (".pt", ".json", ".pt.lock")  # an entry's weights, key record and lock
EXAMPLES = """examples:
  kdlab-cache list                    one line per entry: kind, name, key, size, date, origin
  kdlab-cache show KEY                an entry's key record (JSON); KEY may be a prefix
  kdlab-cache prune --older-than 30   or --all: deletes weights, key record and lock
"""


@dataclass
class Entry:
    """One cache entry: ``<folder>/<stem>.pt`` with its record and lock (any of them may be missing)."""

    kind: str
    folder: Path
    stem: str

    @property
    def weights(self) -> Path:
        return self.folder / f"{self.stem}.pt"

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.folder / f"{self.stem}{s}" for s in SUFFIXES) if p.exists()]

    @property
    def record(self) -> dict[str, Any] | None:
        return read_record(self.weights)

    @property
    def key(self) -> str:
        return str((self.record or {}).get("key") or self.stem.rsplit("-", 1)[-1])

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    @property
    def modified(self) -> float:
        """When the weights or the record were last written (not the lock, which every job that looks touches)."""
        return max((p.stat().st_mtime for p in self.files if p.suffix != ".lock"), default=0.0)


def find_entries(root: Path) -> list[Entry]:
    """Every entry under ``root``, teachers first, each folder in name order."""
    entries = []
    for folder, kind in KINDS.items():
        stems = {p.name.removesuffix(s) for s in SUFFIXES for p in (root / folder).glob(f"*{s}")}
        entries += [Entry(kind, root / folder, stem) for stem in sorted(stems)]
    return entries


def describe(entry: Entry) -> str:
    """One line: kind, name, key, size, date and what the entry was made from."""
    record = entry.record
    name = record["name"] if record else entry.stem.rsplit("-", 1)[0]
    date = datetime.fromtimestamp(entry.modified).strftime("%Y-%m-%d %H:%M")
    return f"{entry.kind:<8} {name:<24} {entry.key:<16} {_size(entry.size):>9}  {date}  {_summary(entry, record)}"


def _summary(entry: Entry, record: dict[str, Any] | None) -> str:
    if record is None:
        return "(no key record: written by an older kdlab, or its write was cut short)"
    if not entry.weights.exists():
        return "(key record without weights: a write that was cut short)"
    content = record.get("content", {})
    if entry.kind == "outputs":
        taps = content.get("taps", {})
        return f"data={content.get('data')} sizes={content.get('sizes')} stages={taps.get('stages')}"
    data = content.get("data", {})
    data_name = data.get("name") or data.get("root") or str(data.get("_target_", "?")).rsplit(".", 1)[-1]
    epochs = content.get("trainer", {}).get("max_epochs")
    accuracy = record.get("val_acc")
    shown = "?" if accuracy is None else f"{100 * accuracy:.1f}%"
    return f"data={data_name} epochs={epochs} seed={content.get('teacher_seed')} val_acc={shown}"


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def list_entries(root: Path) -> None:
    entries = find_entries(root)
    if not entries:
        print(f"no cache entries under {root}")
    for entry in entries:
        print(describe(entry))


def show_entry(root: Path, key: str) -> None:
    """Print the key record of the one entry whose key (or a prefix of it, or its file name) is ``key``."""
    found = [e for e in find_entries(root) if e.key.startswith(key) or e.stem == key]
    if not found:
        raise ConfigError(f"no cache entry with key '{key}' under {root}; `kdlab-cache list` shows them")
    if len(found) > 1:
        raise ConfigError(f"key '{key}' matches {len(found)} entries ({', '.join(e.stem for e in found)}); give more")
    if found[0].record is None:
        raise ConfigError(f"cache entry {found[0].weights} has no key record (written by an older kdlab)")
    print(json.dumps(found[0].record, indent=2, sort_keys=True))


def prune(root: Path, older_than_days: float | None) -> None:
    """Delete every entry (``older_than_days`` None) or those last written more than that many days ago."""
    if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days >= 0):
        raise ConfigError(f"--older-than must be a number of days >= 0, got {older_than_days}")
    cutoff = time.time() - 86400 * older_than_days if older_than_days is not None else math.inf
    removed = freed = 0
    for entry in find_entries(root):
        if entry.modified < cutoff:
            size, line = entry.size, describe(entry)
            if _remove(entry):
                print(f"removed {line}")
                removed, freed = removed + 1, freed + size
    for folder in KINDS:
        remove_stale_temp_files(root / folder)
    print(f"removed {removed} entr{'y' if removed == 1 else 'ies'} ({_size(freed)}) from {root}")


def _remove(entry: Entry) -> bool:
    """Delete weights, record and lock under the entry's lock; an entry a job is writing now is skipped."""
    lock = FileLock(str(entry.weights) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"skipped {entry.weights}: another job holds its lock")
        return False
    try:
        for path in (entry.weights, record_path(entry.weights), Path(lock.lock_file)):
            path.unlink(missing_ok=True)
    finally:
        lock.release()
    return True


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdlab-cache",
        description="See and clear kdlab's teacher cache and teacher-output cache.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cache-dir", help="cache root (default: $KDLAB_CACHE, else the XDG cache dir)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="one line per entry: kind, name, key, size, date, what it was made from")
    show = commands.add_parser("show", help="print an entry's key record (JSON)")
    show.add_argument("key", help="the entry's key, a prefix of it, or its file name without .pt")
    clear = commands.add_parser("prune", help="delete entries: weights, key record and lock")
    which = clear.add_mutually_exclusive_group(required=True)
    which.add_argument("--older-than", type=float, metavar="DAYS", help="entries last written more than DAYS ago")
    which.add_argument("--all", action="store_true", help="every entry")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a bad argument is one line on stderr and exit status 2."""
    args = parser().parse_args(argv)
    root = cache_root(args.cache_dir)
    try:
        if args.command == "list":
            list_entries(root)
        elif args.command == "show":
            show_entry(root, args.key)
        else:
            prune(root, None if args.all else args.older_than)
    except ConfigError as error:
        print(f"kdlab: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
