"""Top functions of a py-spy raw profile (collapsed stacks), by self and by inclusive time.

    python bench/profile_summary.py /tmp/prof/10x10-ours.txt [--top 25]

py-spy's raw format is one line per distinct stack: `outer;…;inner COUNT`, each frame
`function (file:line)`. Line numbers are dropped so a function's samples add up.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    return _LINE_NUMBER.sub(")", frame.strip())


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([frame_name(f) for f in stack.split(";")], int(count)))
    return stacks


def summarize(stacks: list[tuple[list[str], int]], top: int) -> str:
    total = sum(count for _, count in stacks) or 1
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    out = [f"{total} samples", "", f"top {top} by self time:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in self_time.most_common(top)]
    out += ["", f"top {top} by inclusive time:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(summarize(load(args.profile), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
