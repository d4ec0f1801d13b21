"""Jinja2 rendering of the HTML pieces (templates in ``damon_eval/data/templates``)."""

from __future__ import annotations

import functools

import jinja2

from damon_eval.paths import DATA_DIR

TEMPLATE_DIR = DATA_DIR / "templates"


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_template(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)


def standalone_page(title: str, body: str) -> str:
    """A complete HTML document around a fragment, with the styles inlined.

    Snakemake's report shows each HTML output on its own, so every page must
    carry its own CSS.
    """
    return render_template(
        "page.html.j2", title=title, css=(TEMPLATE_DIR / "analysis.css").read_text(), body=body
    )
