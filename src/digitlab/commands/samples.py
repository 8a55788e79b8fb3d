"""`digitlab samples add|list|remove DIR ...`: a person's samples folder (digitlab.store.samples), the pictures of
their writing that `digitlab adapt` fine-tunes a model on; `digitlab serve --samples DIR` fills it from the page."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from digitlab.errors import DigitlabError

HELP = "add labelled pictures of your writing to a samples folder, list them, or remove some"


def register(commands: argparse._SubParsersAction) -> None:
    from digitlab.store.samples import LABELS

    parser = commands.add_parser("samples", help=HELP, description=HELP + ".")
    actions = parser.add_subparsers(dest="action", required=True, metavar="{add,list,remove}")
    add = actions.add_parser("add", help="add image files, all of one label, to DIR (made if new or empty)")
    add.add_argument("folder", metavar="DIR", help="the samples folder")
    add.add_argument("label", metavar="LABEL", help=f"what the pictures show: {', '.join(LABELS)}")
    add.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders of them or glob patterns")
    listing = actions.add_parser("list", help="the samples in DIR, oldest first, and the count per label")
    listing.add_argument("folder", metavar="DIR", help="the samples folder")
    listing.add_argument("--json", action="store_true", help="print the records as one JSON document")
    remove = actions.add_parser("remove", help="delete samples from DIR by id")
    remove.add_argument("folder", metavar="DIR", help="the samples folder")
    remove.add_argument("ids", nargs="+", metavar="ID", help="sample ids, as 'digitlab samples list' shows them")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from digitlab.store.samples import label_index, open_samples

    if args.action == "add":
        label_index(args.label)  # an unknown label is refused before the folder is made
        return _add(open_samples(args.folder, create=True), args.label, args.images)
    folder = open_samples(args.folder)
    if args.action == "remove":
        for sample_id in args.ids:
            record = folder.remove(sample_id)
            print(f"removed {record['id']} ({record['label']})")
        return 0
    records = folder.records()
    if args.json:
        print(json.dumps({"folder": str(folder.path), "samples": records}, indent=2))
        return 0
    for record in records:
        print(f"{record['id']}  {record['label']:>11}  {record.get('source', '')}")
    counts = Counter(record["label"] for record in records)
    print(f"{len(records)} samples: " + ", ".join(f"{label}: {counts[label]}" for label in sorted(counts)))
    return 0


def _add(folder, label: str, arguments: list[str]) -> int:
    """Each file prepared as `digitlab predict` prepares it, then stored with its original; a file that cannot be
    used is named on stderr in one line and the others are still added (exit code 2)."""
    from pathlib import Path

    from digitlab.inference.recognise import find_images, prepare
    from digitlab.store.samples import SampleError

    failed = added = 0
    for name in find_images(arguments):
        try:
            data = Path(name).read_bytes() if name != "-" else sys.stdin.buffer.read()
            _, image = prepare((name, data))
            record = folder.add(label, image, data, source=name)
        except OSError as error:
            print(f"digitlab: {name}: cannot be read ({error.strerror or error})", file=sys.stderr)
            failed += 1
            continue
        except SampleError as error:  # says what was wrong with the picture, not which file it was
            print(f"digitlab: {name}: {error}", file=sys.stderr)
            failed += 1
            continue
        except DigitlabError as error:  # names the file itself
            print(f"digitlab: {error}", file=sys.stderr)
            failed += 1
            continue
        added += 1
        print(f"added {record['id']} ({label}) from {name}")
    print(f"{folder.path}: {added} added, {len(folder.records())} samples in all")
    return 2 if failed else 0
