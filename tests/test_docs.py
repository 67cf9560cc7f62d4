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


def _module_from(code: str, name: str):
    import types

    module = types.ModuleType(name)
    exec(compile(code, f"<docs/plugins.md: {name}>", "exec"), module.__dict__)
    return module


def test_tutorial_code_runs_as_shown():
    # The grey4.py blocks, in page order, are the whole module: it must import and run from them
    # alone, annotations included (a missing import shows up when they are evaluated).
    import typing

    import numpy as np

    from toksuite.registry import PluginHost

    blocks = _titled_blocks((DOCS / "plugins.md").read_text(encoding="utf-8"))
    code = "".join(c for title, c in blocks if title == "toksuite_tutorial/grey4.py")
    module = _module_from(code, "grey4_from_docs")
    cls = module.Grey4Encoder
    for method in ("decode_checked", "encode", "quantize", "sequence_length"):
        typing.get_type_hints(getattr(cls, method), module.__dict__)
    host = PluginHost(autoload=False, extra_plugins={"tutorial": module})
    assert host.encoders.get("pixels-grey4") is cls and not host.failures
    image = np.array([[0, 15, 16], [128, 250, 255]], np.uint8)
    assert cls().decode(cls().encode(image), image.shape)[..., 0].tolist() == [
        [8, 8, 24],
        [136, 248, 248],
    ]


def _section_code(markdown: str, heading: str) -> str:
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"^```python\n(.*?)^```", section, re.S | re.M).group(1)


def test_data_source_example_runs_as_shown(tmp_path):
    import numpy as np

    from toksuite import registry
    from toksuite.data import load_dataset
    from toksuite.data.base import LoadOptions
    from toksuite.errors import DataError

    code = _section_code((DOCS / "plugins.md").read_text(encoding="utf-8"), "Data-source plugins")
    module = _module_from(code, "mnist_csv_from_docs")
    registry.reset_host(registry.PluginHost(autoload=False, extra_plugins={"mnist": module}))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (10, 784))
    labels = np.arange(10)
    csv = tmp_path / "train.csv"
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    np.savetxt(csv, np.column_stack([labels, pixels]), fmt="%d", delimiter=",", header=header,
               comments="")  # fmt: skip
    data = load_dataset(f"mnist-csv:{csv}", LoadOptions(resolution=(14, 14), progress=False))
    assert data.x_train.shape == (8, 14, 14, 1) and data.x_test.shape == (2, 14, 14, 1)
    assert sorted([*data.y_train, *data.y_test]) == list(range(10))
    raw = load_dataset(f"mnist-csv:{csv}", LoadOptions(test_fraction=0, progress=False))
    assert (raw.x_train.reshape(10, -1) == pixels).all()
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("mnist-csv")
    (tmp_path / "bad.csv").write_text("label,a\n1,2\n")
    with pytest.raises(DataError, match=r"bad\.csv: expected a label and 784 values"):
        load_dataset(f"mnist-csv:{tmp_path / 'bad.csv'}")
