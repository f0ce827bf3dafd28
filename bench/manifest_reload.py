"""How long the manifest feed takes to pick up a one-file edit of a large folder.

``netpol-pdp serve --source DIR`` reloads on every change.  A reload lists the
files and merges every object again (so duplicates and the diff stay exact),
but parses only the files that changed since the last load; the others replay
their cached outcomes (index/manifests.py).  This measures, in one run, on a
generated world written as YAML (namespaces, nodes, a file per namespace of
pods and of policies):

- the first load (every file parsed, the index built);
- a reload with nothing changed;
- a reload after one policy file gained a policy (1 upsert), and after it was
  put back (1 delete);
- the same edit reloaded without the cache (every file parsed again, as a
  fresh :class:`ManifestSource` does), the cost the cache saves.

Run::

    python -m netpol_pdp.bench.manifest_reload --size medium      # 10,000 pods; large: 100,000

The world is left alone for 2 s after it is written, as a folder that has been
in place for a while is: a file written within 2 s of being read is parsed
again at the next load (index/manifests.py, ``RACY_NS``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from netpol_pdp.bench.worlds import SIZES, generate_world, write_world
from netpol_pdp.index.engine import Index
from netpol_pdp.index.manifests import RACY_NS, FeedReport, ManifestFeed, ManifestSource

EXTRA_POLICY = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: bench-reload-extra
  namespace: {namespace}
spec:
  podSelector: {{matchLabels: {{bench: reload}}}}
  policyTypes: [Ingress]
"""


def timed(step: Callable[[], FeedReport]) -> tuple[float, FeedReport]:
    began = time.perf_counter()
    report = step()
    return time.perf_counter() - began, report


def measure(root: Path, files: Sequence[Path]) -> dict[str, float | int]:
    policy_file = next(p for p in files if p.parent.name == "policies")
    namespace = policy_file.stem
    original = policy_file.read_text(encoding="utf-8")
    feed = ManifestFeed(ManifestSource(root), Index())
    first, report = timed(feed.start)
    assert report.ok, report.problems
    unchanged, report = timed(feed.reload)
    assert report.ok and report.upserts == report.deletes == 0

    policy_file.write_text(original + EXTRA_POLICY.format(namespace=namespace), encoding="utf-8")
    edited, added = timed(feed.reload)
    assert added.ok and (added.upserts, added.deletes) == (1, 0), added
    uncached_feed = ManifestFeed(ManifestSource(root), Index())
    uncached_feed.start()  # the same state, so that its reload below has the same diff to apply
    policy_file.write_text(original, encoding="utf-8")
    restored, removed = timed(feed.reload)
    assert removed.ok and (removed.upserts, removed.deletes) == (0, 1), removed
    uncached_feed.source = ManifestSource(root)  # an empty cache: every file parsed again
    uncached, report = timed(uncached_feed.reload)
    assert report.ok and (report.upserts, report.deletes) == (0, 1), report
    return {
        "files": len(files),
        "objects": sum(feed.status.objects.values()),
        "first_load_s": round(first, 3),
        "reload_unchanged_s": round(unchanged, 3),
        "reload_one_file_added_s": round(edited, 3),
        "reload_one_file_restored_s": round(restored, 3),
        "reload_one_file_uncached_s": round(uncached, 3),
        "speedup": round(uncached / restored, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="medium")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netpol-pdp-reload-") as tmp:
        root = Path(tmp)
        files = write_world(generate_world(args.size, args.seed), root)
        time.sleep(RACY_NS / 1e9 + 0.1)
        figures = {"size": args.size, **measure(root, files)}
    print(
        f"{args.size} world, {figures['files']} files, {figures['objects']} objects: "
        f"first load {figures['first_load_s']} s; reload with nothing changed "
        f"{figures['reload_unchanged_s']} s; one policy file edited: "
        f"{figures['reload_one_file_added_s']} s (add) / "
        f"{figures['reload_one_file_restored_s']} s (restore), "
        f"{figures['reload_one_file_uncached_s']} s when every file is parsed again "
        f"({figures['speedup']}x)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
