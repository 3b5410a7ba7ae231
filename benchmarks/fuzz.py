"""Long fuzzing run: the properties of tests/test_fuzz.py with a large example budget.

    python benchmarks/fuzz.py --minutes 8            # round-robin until the time is up
    python benchmarks/fuzz.py --examples 20000       # or a fixed number per property

Each property keeps going after a failure (a failure is recorded, with its input, and
the run goes on), so the end report says how many examples ran, what came out of them
(valid results vs. clean SeqclfErrors) and how many failed, i.e. raised anything else or
broke an invariant. Exit code 1 if any failed. The numbers go into
docs/results/reliability.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import test_fuzz as props  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None,
                        help="run round after round until this much time has passed")
    parser.add_argument("--examples", type=int, default=2000,
                        help="examples per property per round")
    args = parser.parse_args()

    outcomes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: dict[str, list[str]] = collections.defaultdict(list)
    scratch = tempfile.TemporaryDirectory(prefix="seqclf-fuzz-")
    folder = Path(scratch.name)

    def record(name: str, fn, *fn_args) -> None:
        try:
            outcomes[name][fn(*fn_args)] += 1
        except Exception as exc:  # noqa: BLE001 - counting failures is the point
            outcomes[name]["FAILED"] += 1
            if len(failures[name]) < 20:
                failures[name].append(f"{type(exc).__name__}: {exc}\n  input: {fn_args[1:]!r}"
                                      f"\n{traceback.format_exc(limit=4)}")

    budget = settings(max_examples=args.examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))

    @budget
    @given(text=props.csv_texts(), data=props.data_sections, model=props.model_sections,
           require_labels=st.booleans())
    def csv_property(text, data, model, require_labels):
        record("csv", props.check_csv, folder, text, data, model, require_labels)

    @budget
    @given(raw=props.config_mappings(), sets=props.overrides)
    def config_property(raw, sets):
        record("config", props.check_config, folder, raw, sets)

    @budget
    @given(text=st.one_of(st.text(max_size=80), st.builds(
        props.yaml.safe_dump, props.config_mappings().filter(lambda r: not isinstance(r, float)))))
    def yaml_property(text):
        record("yaml", props.check_yaml, folder, text)

    started = time.time()
    rounds = 0
    while True:
        for prop in (csv_property, config_property, yaml_property):
            prop()
        rounds += 1
        elapsed = time.time() - started
        total = sum(sum(c.values()) for c in outcomes.values())
        print(f"round {rounds}: {total} examples in {elapsed:.0f} s", flush=True)
        if args.minutes is None or elapsed > args.minutes * 60:
            break

    total = sum(sum(c.values()) for c in outcomes.values())
    failed = sum(c["FAILED"] for c in outcomes.values())
    print(f"\nfuzz run {time.strftime('%Y-%m-%d %H:%M')}: {total} examples, {failed} failures, "
          f"{time.time() - started:.0f} s, {rounds} rounds of {args.examples} examples per "
          f"property; {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")
    for name, counts in outcomes.items():
        print(f"  {name}: {sum(counts.values())} examples: "
              + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    for name, items in failures.items():
        for item in items:
            print(f"\nFAILURE ({name}) {item}")
    scratch.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
