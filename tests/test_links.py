"""The README, docs/ and the committed results pages link only to files a clone has."""

import re
import subprocess

from tests.conftest import REPO

LINK = re.compile(r"\]\(([^)\s]+)\)")   # markdown links and images: [text](target)


def tracked_pages() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [p for p in out.split() if p == "README.md" or p.startswith(("docs/", "results/"))]


def test_every_relative_link_of_a_page_names_a_file_of_the_repository():
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                                 check=True).stdout.split())
    broken = []
    for page in tracked_pages():
        text = (REPO / page).read_text()
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            path = (REPO / page).parent / target.split("#")[0]
            rel = path.resolve().relative_to(REPO.resolve()).as_posix()
            if rel not in tracked and not any(t.startswith(rel + "/") for t in tracked):
                broken.append(f"{page}: {target}")
    assert not broken, "links to files a clone does not have:\n" + "\n".join(broken)
