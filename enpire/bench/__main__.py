"""`python -m enpire.bench [--quick] [--json PATH] [NAME ...]`: run benchmarks, print a table,
write {"<bench>": {"<figure>": value}} as JSON. Figures are measured medians and ratios."""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import import_module
from pathlib import Path

from enpire.bench import DESCRIPTIONS, MODULES, REGISTRY


def _load() -> list[str]:
    missing = []
    for module in MODULES:
        try:
            import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
            missing.append(module)
    return missing


def main(argv: list[str] | None = None) -> int:
    missing = _load()
    parser = argparse.ArgumentParser(
        prog="python -m enpire.bench", description=__doc__,
        epilog="benches: " + "; ".join(f"{k}: {v}" for k, v in sorted(DESCRIPTIONS.items())))
    parser.add_argument("names", nargs="*", help="benches to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="shorter runs (CI-sized)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    names = args.names or sorted(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"enpire.bench: unknown bench(es) {unknown}; known: {sorted(REGISTRY)}"
              + (f" (not loaded: {missing})" if missing else ""), file=sys.stderr)
        return 2
    results: dict[str, dict[str, float]] = {}
    for name in names:
        start = time.perf_counter()
        results[name] = REGISTRY[name](args.quick)
        print(f"\n== {name} ({time.perf_counter() - start:.1f} s) ==")
        width = max((len(k) for k in results[name]), default=0)
        for key, value in results[name].items():
            print(f"  {key:<{width}}  {value:.4g}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
