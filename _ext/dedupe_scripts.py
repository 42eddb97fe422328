"""Sphinx extension: drop repeated <script> entries from every page.

With Sphinx 7.4, sphinx-thebe's inline configuration script (``const THEBE_JS_URL = ...``) ends
up twice in each page, and the second copy throws "Identifier 'THEBE_JS_URL' has already been
declared" in the browser console. Identical script entries are never useful, so keep the first.
"""


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    # an inline script has filename None or "" depending on how it was added
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, "filename", None) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
