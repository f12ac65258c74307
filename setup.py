"""Builds the compiled kernels; everything else about the package is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "sessionflow.session_data._kernels",
                ["src/sessionflow/session_data/_kernels.pyx"],
            ),
            Extension("sessionflow._bar_builder", ["src/sessionflow/_bar_builder.pyx"]),
            Extension("sessionflow.importer._cells", ["src/sessionflow/importer/_cells.pyx"]),
        ],
        compiler_directives={"language_level": "3"},
    )
)
