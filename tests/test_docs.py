"""The docs cannot drift from the code: CLI pages, the nav, the tutorial's code, image sizes."""

from __future__ import annotations

import difflib
import importlib.util
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIAL_PLUGIN = ROOT / "plugins" / "toksuite-tutorial"
MAX_IMAGE_BYTES = 250_000  # plots in the docs stay small; the repository is not an image store


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts/gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_cli_docs = _load_generator()


def test_cli_pages_are_up_to_date(tmp_path):
    # Regenerate into a temporary folder and compare file by file: an option added, renamed or
    # re-documented without `python scripts/gen_cli_docs.py` fails here.
    gen_cli_docs.write_pages(tmp_path)
    fresh = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.md")}
    committed = {p.name: p.read_text(encoding="utf-8") for p in (DOCS / "cli").glob("*.md")}
    assert sorted(committed) == sorted(fresh), "run: python scripts/gen_cli_docs.py"
    for name, text in fresh.items():
        if committed[name] != text:
            diff = difflib.unified_diff(
                committed[name].splitlines(), text.splitlines(), "committed", "fresh", n=0
            )
            changed = "\n".join(list(diff)[2:8])
            regenerate = "run: python scripts/gen_cli_docs.py"
            pytest.fail(f"docs/cli/{name} is stale ({regenerate}):\n{changed}")
    assert gen_cli_docs.stale_pages(DOCS / "cli") == []


def test_every_command_has_a_page_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    commands = gen_cli_docs.command_names()
    assert {"squeeze", "flops", "pretrain", "probe", "sample", "compare"} <= set(commands)
    for name in commands:
        page = DOCS / "cli" / f"{name}.md"
        assert page.is_file(), f"no page for toksuite {name}"
        assert f"# `toksuite {name}`" in page.read_text(encoding="utf-8")
        assert f"cli/{name}.md" in nav, f"cli/{name}.md is not in the mkdocs.yml nav"


def test_generated_page_documents_every_option():
    page = (DOCS / "cli" / "squeeze.md").read_text(encoding="utf-8")
    for option in ("--encoders", "--vocab", "--data", "--resolution", "--crop", "--plot", "--json"):
        assert option in page
    assert "`1000,5000,10000,30000`" in page  # the default, in its own column


def _titled_blocks(markdown: str) -> list[tuple[str, str]]:
    """(title, code) of every fenced block written as ```lang title="FILE"."""
    pattern = re.compile(r'^```\w*\s+title="([^"]+)"\n(.*?)^```', re.S | re.M)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(markdown)]


def test_tutorial_code_is_the_plugins_code():
    blocks = _titled_blocks((DOCS / "plugins.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 10
    for title, code in blocks:
        source = TUTORIAL_PLUGIN / title
        assert source.is_file(), f"docs/plugins.md shows {title}, which the tutorial plugin lacks"
        # Blocks show methods without their class, so compare dedented lines, in order.
        wanted = textwrap.dedent(code).strip("\n").splitlines()
        lines = textwrap.dedent(source.read_text(encoding="utf-8")).splitlines()
        stripped = [line.strip() for line in lines]
        first = wanted[0].strip()
        starts = [i for i, line in enumerate(stripped) if line == first]
        assert any(stripped[i : i + len(wanted)] == [w.strip() for w in wanted] for i in starts), (
            f"a block of docs/plugins.md is no longer in {title}: starts {first!r}"
        )


@pytest.mark.parametrize("image", sorted((DOCS / "img").glob("*.png")), ids=lambda p: p.name)
def test_doc_images_are_small(image):
    assert image.stat().st_size <= MAX_IMAGE_BYTES, f"{image.name} is over 250 KB"


def test_every_doc_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")]
    missing = [p for p in pages if p not in nav]
    assert not missing, f"pages not in the mkdocs.yml nav: {missing}"
