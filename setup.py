"""The one thing pyproject.toml cannot say: the browser client's shell, the top-level
``static/``, goes into the wheel as ``workshop_lib/static`` (workshop_lib/app/shell.py finds it
there, or at the top of a clone). Everything else is in pyproject.toml."""

import warnings

from setuptools import find_namespace_packages, setup

# With that mapping an editable install uses setuptools' import finder, which then warns that
# a folder named like the package may take precedence. In a clone that folder is the package
# itself, so the warning only alarms a learner running `pip install -e .`.
warnings.filterwarnings("ignore", message="Editable installation")

setup(
    packages=[*find_namespace_packages(include=["workshop_lib*"]), "workshop_lib.static"],
    package_dir={"workshop_lib.static": "static"},
)
