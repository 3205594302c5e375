"""nbstripout as the git filter of notebooks, so using one in JupyterLab leaves git clean.

``.gitattributes`` (committed) names the filter for ``*.ipynb``; ``install_git_filter``
defines it in a clone's ``.git/config`` (``make env`` runs it). The clean side strips
outputs, execution counts and the ``language_info`` fields JupyterLab adds on save, and
keeps cell ids (docs/decisions.md, item 19).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# language_info as JupyterLab writes it on save, reduced to the committed {"name": "python"}
EXTRA_KEYS = [f"metadata.language_info.{key}" for key in
              ("codemirror_mode", "file_extension", "mimetype", "nbconvert_exporter", "pygments_lexer", "version")]


def clean_command(python: str = sys.executable) -> str:
    return f"'{python}' -m nbstripout --keep-id"


def install_git_filter(repo: Path, python: str = sys.executable) -> bool:
    """Define the nbstripout filter in ``repo``'s git config; False outside a git work tree."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)

    if git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        return False
    settings = {
        "filter.nbstripout.clean": clean_command(python),
        "filter.nbstripout.smudge": "cat",
        "filter.nbstripout.extrakeys": " ".join(EXTRA_KEYS),
        "diff.ipynb.textconv": clean_command(python) + " -t",
    }
    for key, value in settings.items():
        git("config", key, value).check_returncode()
    return True


if __name__ == "__main__":  # python -m osservatorio.running.gitfilter [REPO] (used by make env)
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    print("nbstripout git filter " + ("installed" if install_git_filter(repo) else "skipped: not a git work tree"))
