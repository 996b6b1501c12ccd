"""The README and the manual hold together: a short README whose links resolve, an mkdocs nav of pages that
exist, and no reference to a document the repository does not hold. (`make docs` builds the site itself.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.conftest import REPO

LINK = re.compile(r"!?\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")


def pages() -> list[Path]:
    return [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_is_short_and_every_relative_link_resolves():
    assert len((REPO / "README.md").read_text().splitlines()) <= 200
    for page in pages():
        for target in LINK.findall(page.read_text()):
            if not re.match(r"[a-z]+:", target):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which is not there"


def test_mkdocs_nav_lists_existing_pages():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text().replace("!!python", "#"))
    listed = [next(iter(item.values())) for item in config["nav"]]
    assert listed and all((REPO / "docs" / page).is_file() for page in listed)


# documents outside the repository, spelled in pieces so that this file, which looks for them, names none
MISSING_DOCUMENTS = ("source " + "document", "DESIGN" + ".md", "../" + "shared/", "/work/" + "shared")


def test_nothing_refers_to_a_document_the_repository_does_not_hold():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        path = REPO / name
        if path.suffix in (".png", ".h5", ".pt") or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        for phrase in MISSING_DOCUMENTS:
            if phrase in text:
                found.append(f"{name}: {phrase}")
    assert not found, found
