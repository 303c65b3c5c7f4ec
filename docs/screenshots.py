"""Screenshots of the built docs in headless Chromium: the landing page, a method page, the
benchmarks page and a tutorial, as a newcomer's browser shows them.

    sphinx-build -W -n docs docs/_build/html      # build the site first
    python docs/screenshots.py                    # PNGs in docs/_build/screenshots/
    python docs/screenshots.py --html docs/_build/html --out /tmp/shots --width 1280 --height 2400

Chromium comes from Debian's ``chromium`` package (``apt-get install -y chromium``) or
``$XMARL_CHROMIUM``. The pictures are not kept in the repository: run this to see the pages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

from chromium import Chromium, serve  # noqa: E402

#: (file name, page, what must be on screen before the picture is taken)
PAGES = (
    ("landing.png", "index.html", "document.querySelector('img[alt*=\"learning curves\"]')?.complete"),
    ("method-maddpg.png", "_generated/methods/maddpg.html", "window.MathJax?.startup?.promise.then(() => true)"),
    ("benchmarks.png", "_generated/benchmarks.html", "[...document.images].every(i => i.complete)"),
    ("tutorial-compare.png", "tutorials/compare_backends.html", "[...document.images].every(i => i.complete)"),
)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=HERE / "_build" / "html", help="the built site")
    parser.add_argument("--out", type=Path, default=HERE / "_build" / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000, help="pixels from the top of each page (0: all)")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").exists():
        raise SystemExit(f"no built site in {args.html}: run sphinx-build -W -n docs {args.html} first")
    saved = []
    with serve(args.html) as base, Chromium(width=args.width) as browser:
        for name, page_path, ready in PAGES:
            page = browser.open(f"{base}/{page_path}")
            page.wait_for(ready)
            saved.append(page.screenshot(args.out / name, args.width, args.height or None))
            print(saved[-1])
    return saved


if __name__ == "__main__":
    main()
