"""gluon-amp: automatic mixed precision for MXNet Gluon, and amplint, a linter for its hazards."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = "0.1.0"

# MXNet 1.9.1 uses ``np.bool`` (removed in numpy 1.24); numpy 1.23 has wheels up to Python 3.11.
MXNET_PYTHON = 'python_version < "3.12"'
NUMPY = f"numpy>=1.16,<1.24; {MXNET_PYTHON}"

setup(
    name="gluon-amp",
    version=VERSION,
    description="Mixed precision for MXNet Gluon, and a linter for mixed-precision hazards",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["gluon_amp", "gluon_amp.*", "amplint", "amplint.*"]),
    include_package_data=True,
    package_data={"amplint": ["py.typed"], "gluon_amp": ["py.typed"]},
    install_requires=[
        "libcst>=1.8,<2",  # 1.8 parses every Python version's grammar (PEP 695, 701, 750)
        "click>=8.0",
        "pathspec>=0.12,<2",
        'tomli>=1.1; python_version < "3.11"',
    ],
    extras_require={
        "cpu": [f"mxnet==1.9.1; {MXNET_PYTHON}", NUMPY],
        "cu112": [f"mxnet-cu112==1.9.1; {MXNET_PYTHON}", NUMPY],
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "jsonschema>=4",
            "pre-commit>=3",
            "ruff>=0.17,<0.18",  # pinned: tests/test_style.py runs it over the tree
        ],
        "examples": [
            f"scikit-learn>=1.0,<1.4; {MXNET_PYTHON}",
            f"matplotlib>=3.5,<3.9; {MXNET_PYTHON}",
            "tqdm>=4",
        ],
    },
    entry_points={"console_scripts": ["amplint=amplint.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
