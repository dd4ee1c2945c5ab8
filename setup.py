"""The one thing pyproject.toml cannot say: the browser client's shell, the top-level
``static/``, goes into the wheel as ``workshop_lib/static`` (workshop_lib/app/shell.py finds it
there, or at the top of a clone). Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["workshop_lib*"]), "workshop_lib.static"],
    package_dir={"workshop_lib.static": "static"},
)
