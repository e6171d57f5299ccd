"""The documentation holds together: the flags page is what scripts/flags_doc.py writes from the parsers and
documents every flag each script accepts, under the script's own name; the front page stays short, every
link leads somewhere, and the claims the tests quote are on the pages they name."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, parser_of

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
FRONT_PAGE_LIMIT = 15_000  # bytes: the front page says what the project is; the rest is in docs/


def flags_doc():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import flags_doc
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return flags_doc


def test_the_flags_page_is_what_the_generator_writes():
    result = subprocess.run([sys.executable, "scripts/flags_doc.py", "--check"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, f"docs/flags.md is stale: run python scripts/flags_doc.py\n{result.stderr}"


def test_check_fails_on_a_stale_flags_page_and_writing_fixes_it(tmp_path, monkeypatch, capsys):
    module = flags_doc()
    page = tmp_path / "docs" / "flags.md"
    monkeypatch.setattr(module, "PAGE", page)
    assert module.main(["--check"]) == 1  # no page yet
    page.parent.mkdir()
    page.write_text((DOCS / "flags.md").read_text(encoding="utf-8").replace("`--alpha`", "`--beta`"), encoding="utf-8")
    assert module.main(["--check"]) == 1
    assert "docs/flags.md is out of date" in capsys.readouterr().err
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
    assert page.read_text(encoding="utf-8") == (DOCS / "flags.md").read_text(encoding="utf-8")


def test_the_flags_page_expands_defaults_as_help_does():
    """The help column is argparse's own text: %(default)s filled in per script (the two training scripts
    have different learning rates), no placeholder left."""
    text = (DOCS / "flags.md").read_text(encoding="utf-8")
    assert "%(default)s" not in text and "%%" not in text
    def section(script: str) -> str:
        return text.split(f"\n## {script}\n", 1)[1].split("\n## ", 1)[0]

    assert "AdamW peak learning rate (default: 2e-05)" in section("trainer_teacher.py")
    assert "AdamW peak learning rate (default: 5e-05)" in section("distilled-bert.py")


@pytest.mark.parametrize("script", ["trainer_teacher.py", "distilled-bert.py", "evaluate.py", "sweep.py"])
def test_every_flag_is_on_the_flags_page(script):
    page = (REPO / "docs" / "flags.md").read_text(encoding="utf-8")
    # The script's own section: a flag another script has does not count for this one.
    section = page.split(f"\n## {script}\n", 1)[1].split("\n## ", 1)[0]
    flags = [s for action in parser_of(script)._actions for s in action.option_strings if s.startswith("--") and s != "--help"]
    missing = [f for f in flags if f"`{f}`" not in section]
    assert not missing, f"{script}: flags missing from docs/flags.md: {missing}"


def test_the_front_page_is_at_most_15000_bytes():
    size = len(README.read_bytes())
    assert size <= FRONT_PAGE_LIMIT, f"README.md is {size} bytes; move detail to a page under docs/"


def index_links() -> list[str]:
    readme = README.read_text(encoding="utf-8")
    index = readme.split("\n## Documentation\n", 1)
    assert len(index) == 2, "README.md lost its Documentation index"
    return re.findall(r"^- \[[^\]]+\]\((docs/[^)#]+)\)", index[1].split("\n## ", 1)[0], re.M)


def test_every_page_of_the_readme_index_exists_and_every_page_is_in_it():
    linked = index_links()
    assert linked, "the Documentation index links no page"
    assert [p for p in linked if not (REPO / p).is_file()] == []
    pages = sorted(p.relative_to(REPO).as_posix() for p in DOCS.glob("*.md"))
    assert [p for p in pages if p not in linked] == []


def github_anchor(heading: str, seen: dict[str, int]) -> str:
    """The id GitHub gives a heading: its text without code marks, lower case, punctuation other than - and _
    dropped, spaces as -; a repeated one gets -1, -2, ..."""
    slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def without_code(text: str) -> str:
    """The page without fenced blocks and code spans, where a [x](y) is not a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors_of(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    body = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {github_anchor(m.group(1), seen) for m in re.finditer(r"^#{1,6} +(.+?) *$", body, re.M)}


def links_of(page: Path) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", without_code(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_leads_to_a_file_and_anchor_that_exist(page):
    broken = []
    for link in links_of(page):
        if re.match(r"[a-z]+:", link):  # https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link} (no such file)")
        elif anchor and target.suffix == ".md" and anchor not in anchors_of(target):
            broken.append(f"{link} (no heading #{anchor} in {target.relative_to(REPO)})")
    assert broken == [], f"{page.relative_to(REPO)}: broken links: {broken}"


def normalized(text: str) -> str:
    return " ".join(text.replace("`", "").split())


def quoted_claims() -> list[tuple[str, str, str]]:
    """(test, page, quoted text) for every quotation in tests/product/test_doc_claims.py's docstrings, with the
    page the docstring names before it."""
    tree = ast.parse((REPO / "tests" / "product" / "test_doc_claims.py").read_text(encoding="utf-8"))
    claims = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            doc = ast.get_docstring(node) or ""
            parts = re.split(r"((?:docs/[\w-]+|README)\.md)", doc)
            assert len(parts) > 1, f"{node.name}'s docstring names no page"
            for page, text in zip(parts[1::2], parts[2::2]):
                claims += [(node.name, page, quote) for quote in re.findall(r'"([^"]+)"', text)]
    return claims


CLAIMS = quoted_claims()


@pytest.mark.parametrize("test, page, quote", CLAIMS, ids=[f"{test}-{i}" for i, (test, _, _) in enumerate(CLAIMS)])
def test_each_claim_a_test_quotes_is_on_the_page_it_names(test, page, quote):
    text = normalized((REPO / page).read_text(encoding="utf-8"))
    missing = [piece for piece in map(normalized, quote.split("...")) if piece and piece not in text]
    assert missing == [], f"{test}: not on {page}: {missing}"
