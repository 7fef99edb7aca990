"""schedc's build backend: setuptools' own, unchanged, loaded from this folder
(pyproject's backend-path) so that `build_shipped` beside it is importable while building, in
an isolated build (pip install ., pre-commit) as much as in an editable or non-isolated one.
"""

from setuptools.build_meta import *  # noqa: F403
