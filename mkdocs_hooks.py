"""MkDocs hooks (mkdocs.yml `hooks:`): links from a page to repository files outside docs/.

The pages link to results, the model card and the like with ordinary relative links
(`../results/benchmarks/...`), which GitHub follows as they are. MkDocs only knows the files
under docs/, so in strict mode it would fail on every one of them. Before MkDocs reads a page,
each such link is checked (a file or folder of the repository that does not exist fails the
build) and marked with a `repo-file:` scheme, which MkDocs leaves alone; once the page is HTML
the mark becomes the path from the built page to the file in the checkout (or, with `repo_url`
set, the file's URL in the repository). Links between pages are left to MkDocs' own checks.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mkdocs.exceptions import PluginError

SCHEME = "repo-file:"
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
MARKED = re.compile(r'(href|src)="' + re.escape(SCHEME) + r'([^"#]*)(#[^"]*)?"')


def _repo(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def _outside_docs(url: str, page, config) -> str | None:
    """The repository path a relative link points to when that is outside docs/, else None."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("/", "#")) or not parts.path:
        return None
    docs = Path(config.docs_dir).resolve()
    target = Path(os.path.normpath(docs / posixpath.dirname(page.file.src_uri) / unquote(parts.path)))
    if target == docs or docs in target.parents:
        return None
    repo = _repo(config)
    if repo not in target.parents:
        raise PluginError(f"{page.file.src_uri}: the link {url!r} leaves the repository")
    if not target.exists():
        raise PluginError(f"{page.file.src_uri}: the link {url!r} points to a missing file {target.relative_to(repo)}")
    return target.relative_to(repo).as_posix() + ("/" if target.is_dir() else "")


def on_page_markdown(markdown: str, page, config, files) -> str:
    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced:

            def mark(m: re.Match) -> str:
                rel = _outside_docs(m.group(2), page, config)
                if rel is None:
                    return m.group(0)
                anchor = urlsplit(m.group(2)).fragment
                return f"{m.group(1)}{SCHEME}{rel}{'#' + anchor if anchor else ''}{m.group(3)}"

            line = LINK.sub(mark, line)
        out.append(line)
    return "".join(out)


def on_page_content(html: str, page, config, files) -> str:
    repo, site = _repo(config), Path(config.site_dir).resolve()
    here = site / posixpath.dirname(page.file.dest_uri)

    def resolve(m: re.Match) -> str:
        rel, anchor = m.group(2), m.group(3) or ""
        if config.repo_url:
            kind = "tree" if rel.endswith("/") else "blob"
            url = f"{config.repo_url.rstrip('/')}/{kind}/HEAD/{rel}"
        else:
            url = os.path.relpath(repo / rel, here).replace(os.sep, "/") + ("/" if rel.endswith("/") else "")
        return f'{m.group(1)}="{url}{anchor}"'

    return MARKED.sub(resolve, html)
