"""The console's first load: gzip size of the JavaScript (and CSS) the sign-in page loads.

    .venv/bin/python bench/console_first_load.py [--budget-kb 500]

Reads the built app (bot/console/static, `./scripts/build-console` makes it): index.html's entry
script and everything it imports statically, transitively (modulepreload links and `import … from`
of the entry chunks), plus the sign-in page's own lazy chunk and its static imports. Exits 1 when
the JavaScript is over the budget.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "bot" / "console" / "static"
STATIC_IMPORT = re.compile(r"""(?:import|export)\s*(?:[\w*{}\s,$]+from\s*)?["'](\./[^"']+\.js)["']""")
LAZY_SIGN_IN = re.compile(r"""import\(["'](\./SignIn-[^"']+\.js)["']\)""")


def closure(start: list[Path]) -> list[Path]:
    """The files `start` imports statically, transitively (what the browser fetches before running)."""
    seen: dict[Path, None] = {}
    queue = list(start)
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen[path] = None
        text = path.read_text(encoding="utf-8")
        queue += [path.parent / name for name in STATIC_IMPORT.findall(text)]
    return list(seen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-kb", type=float, default=500)
    args = parser.parse_args()
    index = STATIC / "index.html"
    if not index.is_file():
        print("the console is not built: run ./scripts/build-console", file=sys.stderr)
        return 2
    html = index.read_text(encoding="utf-8")
    entries = [STATIC / src.removeprefix("/console/") for src in re.findall(r'src="(/console/assets/[^"]+\.js)"', html)]
    styles = [STATIC / href.removeprefix("/console/") for href in re.findall(r'href="(/console/assets/[^"]+\.css)"', html)]
    files = closure(entries)
    sign_in = [path.parent / name for path in files for name in LAZY_SIGN_IN.findall(path.read_text(encoding="utf-8"))]
    files = closure(files + sign_in)
    # The sign-in chunk's CSS (Element Plus input/button/alert styles) is loaded with it.
    styles += [p.with_suffix(".css") for p in sign_in if p.with_suffix(".css").exists()]

    def gz(path: Path) -> int:
        return len(gzip.compress(path.read_bytes(), compresslevel=9))

    js_total = sum(gz(p) for p in files)
    for path in sorted(files, key=gz, reverse=True):
        print(f"{gz(path) / 1024:8.1f} KB  {path.name}")
    css_total = sum(gz(p) for p in styles)
    print(f"JavaScript: {len(files)} files, {js_total / 1024:.1f} KB gzip (budget {args.budget_kb:.0f} KB); "
          f"CSS: {css_total / 1024:.1f} KB gzip")
    return 0 if js_total / 1024 <= args.budget_kb else 1


if __name__ == "__main__":
    sys.exit(main())
