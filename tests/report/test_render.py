"""The renderings: HTML is one self-contained file that parses; user text cannot inject markup."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from cortex import Cortex
from cortex.report import ComplianceReport, render
from tests.report.scenario import HOSTILE, Scenario

# Elements that load or run something, or point elsewhere: none may appear.
_FORBIDDEN_TAGS = {"script", "link", "img", "iframe", "object", "embed", "audio", "video", "a"}
_URL_ATTRIBUTES = {"src", "href", "xlink:href", "action", "srcset", "poster", "data"}
_VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "source", "wbr"}


class _Collector(HTMLParser):
    """Every start tag with its attributes, the text of <style>, and whether tags balance."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.mismatched: list[str] = []
        self.style = ""
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in _VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.mismatched.append(tag)

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "style":
            self.style += data
        else:
            self.text.append(data)


@pytest.fixture
async def report(populated: tuple[Cortex, Scenario]) -> ComplianceReport:
    engine, _ = populated
    return await engine.report()


def _parsed(text: str) -> _Collector:
    collector = _Collector()
    collector.feed(text)
    collector.close()
    return collector


def test_the_html_parses_with_balanced_tags_and_inline_svg_charts(
    report: ComplianceReport,
) -> None:
    page = render(report, "html")

    parsed = _parsed(page)

    assert page.startswith("<!DOCTYPE html>")
    assert parsed.mismatched == []
    assert parsed.open == []
    names = [tag for tag, _ in parsed.tags]
    assert names.count("svg") == 2  # activity over time, entries by op
    assert names.count("rect") >= len(report.body["activity"]["by_op"])
    assert "section" in names
    assert "table" in names


def test_the_html_has_no_scripts_and_no_external_references(report: ComplianceReport) -> None:
    parsed = _parsed(render(report, "html"))

    for tag, attrs in parsed.tags:
        assert tag not in _FORBIDDEN_TAGS
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert not _URL_ATTRIBUTES & set(attrs), (tag, attrs)
        assert "url(" not in (attrs.get("style") or "")
    assert "url(" not in parsed.style
    assert "@import" not in parsed.style


def test_user_text_is_escaped_in_html_and_markdown(report: ComplianceReport) -> None:
    page = render(report, "html")
    markdown = render(report, "md")

    assert HOSTILE in "".join(_parsed(page).text)  # shown as text, not as markup
    assert "<script>" not in page
    assert "<script>" not in markdown
    row = next(line for line in markdown.splitlines() if "alert" in line)
    cells = row.split(" | ")
    assert len(cells) == 9  # the gate table's columns: the reason's "|" is escaped


def test_markdown_has_every_section_in_order(report: ComplianceReport) -> None:
    markdown = render(report, "md")

    titles = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]

    assert [title.split(".")[0] for title in titles] == [str(n) for n in range(1, 9)]
    assert "**Integrity: OK." in markdown
    assert report.header["body_sha256"] in markdown
